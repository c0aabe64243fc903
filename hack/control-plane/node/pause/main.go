// Command pause is the sandbox ("pause") container of the test cluster's Pods: it holds the Pod's
// namespaces and does nothing until it is told to stop. Built static, so the image is this one file.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	// Reap orphans that end up here (the pause process is PID 1 when the Pod shares its PID namespace).
	signal.Ignore(syscall.SIGCHLD)
	<-stop
}
