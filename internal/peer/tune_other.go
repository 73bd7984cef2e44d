//go:build !linux

package peer

func setNotSentLowat(fd uintptr, n int) {}

func setMaxPacing(fd uintptr, bytesPerSec uint32) {}
