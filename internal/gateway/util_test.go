package gateway

import (
	"os"
	"runtime"
)

func runtimeGosched() { runtime.Gosched() }

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}
