// Command node is one binary holding the upstream node components, the kubelet and
// kube-proxy, built from the same Kubernetes module as the control plane (tools/k8s) and
// only for the real-node tier (GENTRAIN_NODE=kubelet): the demo and the fast tier never
// pay for its build.
//
// The component is chosen by the name the binary is invoked as (a symlink such as
// kubelet -> k8s-node) or, failing that, by the first argument: `k8s-node kubelet ...`.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client metrics, as upstream's kubelet
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream's kubelet
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
)

var components = map[string]func() *cobra.Command{
	"kubelet":    func() *cobra.Command { return kubelet.NewKubeletCommand(context.Background()) },
	"kube-proxy": proxy.NewProxyCommand,
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args
	if _, known := components[name]; !known && len(os.Args) > 1 {
		name, args = os.Args[1], os.Args[1:]
	}
	newCommand, known := components[name]
	if !known {
		fmt.Fprintf(os.Stderr, "usage: k8s-node {kubelet|kube-proxy} [flags]\n")
		os.Exit(2)
	}
	command := newCommand()
	command.SetArgs(args[1:])
	os.Exit(cli.Run(command))
}
