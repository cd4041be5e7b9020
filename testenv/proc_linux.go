package testenv

import "syscall"

// childAttr makes a child node die with the test binary, so a test that
// panics or times out leaves no server behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
