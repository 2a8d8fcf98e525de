"""NVML figures per GPU, read at scrape time. On a machine without NVIDIA GPUs (or
without the driver library) there are none, and the metrics are absent — never zero."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class NVML:
    def __init__(self) -> None:
        self.handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self.pynvml = pynvml
            self.handles = [
                pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
            ]
        except Exception as error:  # no driver, no GPU: NVML is simply not there
            log.info("NVML not available (%s): GPU metrics are absent", type(error).__name__)

    def read(self) -> list[dict[str, float]]:
        figures = []
        for index, handle in enumerate(self.handles):
            nv = self.pynvml
            entry: dict[str, float] = {"gpu": index}
            try:
                entry["utilization"] = nv.nvmlDeviceGetUtilizationRates(handle).gpu / 100.0
                memory = nv.nvmlDeviceGetMemoryInfo(handle)
                entry["memory_used"], entry["memory_total"] = (
                    float(memory.used),
                    float(memory.total),
                )
                entry["temperature"] = float(
                    nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU)
                )
                entry["power"] = nv.nvmlDeviceGetPowerUsage(handle) / 1000.0
            except Exception as error:
                log.debug("NVML read failed for GPU %d: %s", index, error)
            figures.append(entry)
        return figures
