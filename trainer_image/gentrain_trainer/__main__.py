"""`python -m gentrain_trainer --config PATH --checkpoint-dir PATH --metrics-port 9090`

Exit codes: 0 done (or stopped by SIGTERM after saving a checkpoint); 2 bad configuration;
3 the checkpoint volume is full (earlier checkpoints intact); other: crash. The reason of
2 and 3 is also written to /dev/termination-log, so it shows in the pod's status.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

from gentrain_contract import program

from . import distributed
from .checkpoints import VolumeFullError
from .config import ConfigError
from .datasets import DatasetError
from .families.base import ModelConfigError
from .loop import Options, Trainer

TERMINATION_LOG = Path(program.TERMINATION_LOG)
CONFIG_ERROR_EXIT, VOLUME_FULL_EXIT = 2, 3


def _write_termination_log(path: Path, message: str) -> None:
    if path.parent.exists():
        with contextlib.suppress(OSError):
            path.write_text(message)


def _resume(value: str) -> str:
    if value in ("auto", "none") or value.isdigit():
        return value
    raise argparse.ArgumentTypeError("expected auto, none or a step number")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gentrain_trainer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--checkpoint-dir", type=Path, required=True)
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=program.DEFAULT_METRICS_PORT,
        help="0 turns the exporter off",
    )
    parser.add_argument("--resume", type=_resume, default="auto")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument("--max-steps", type=int, help="override training.max_steps")
    parser.add_argument("--no-eval", action="store_true", help="skip milestone evaluation")
    parser.add_argument(
        "--final-scrape-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after the last step, wait up to this long for one more scrape of the metrics",
    )
    parser.add_argument(
        "--final-scrape-by",
        default="",
        metavar="USER_AGENT",
        help="only a scrape whose User-Agent starts with this ends that wait (default: any)",
    )
    parser.add_argument(
        "--termination-log",
        type=Path,
        default=TERMINATION_LOG,
        help="where a bad configuration's reason is written (the pod's terminationMessagePath)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    options = Options(
        args.config,
        args.checkpoint_dir,
        args.metrics_port,
        args.resume,
        args.device,
        args.max_steps,
        evaluate=not args.no_eval,
        final_scrape_wait=args.final_scrape_wait,
        final_scrape_by=args.final_scrape_by,
    )
    world = distributed.join()
    if not world.main:  # one voice per pod: rank 0 writes the termination log
        args.termination_log = Path("/nonexistent/termination-log")
    trainer: Trainer | None = None
    try:
        trainer = Trainer(options)
        trainer.resume()
    except (ConfigError, DatasetError, ModelConfigError, ValueError) as error:
        message = f"invalid configuration: {error}"
        logging.getLogger("gentrain.trainer").error(message)
        _write_termination_log(args.termination_log, message)
        if trainer is not None:
            trainer.close()
        return CONFIG_ERROR_EXIT
    try:
        trainer.run()
    except VolumeFullError as error:
        # Not a crash to retry: the next attempt would fill the volume again.
        logging.getLogger("gentrain.trainer").error("%s", error.strerror)
        _write_termination_log(args.termination_log, str(error.strerror))
        return VOLUME_FULL_EXIT
    finally:
        trainer.close()
    distributed.leave()
    # The operator reads this from the pod's status: "completed ..." or "stopped ...".
    _write_termination_log(args.termination_log, trainer.outcome)
    return 0


if __name__ == "__main__":
    distributed.end_process(main())
