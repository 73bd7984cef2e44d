package peer

import "syscall"

// tcpNotSentLowat is TCP_NOTSENT_LOWAT from linux/tcp.h.
const tcpNotSentLowat = 25

func setNotSentLowat(fd uintptr, n int) {
	_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, n)
}

// soMaxPacingRate is SO_MAX_PACING_RATE from asm-generic/socket.h.
const soMaxPacingRate = 47

// setMaxPacing sets the socket's pacing cap; 0 means none (~0U to the kernel).
func setMaxPacing(fd uintptr, bytesPerSec uint32) {
	v := bytesPerSec
	if v == 0 {
		v = ^uint32(0)
	}
	_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soMaxPacingRate, int(int32(v)))
}
