package emulatortest

import "syscall"

// syscallAddrInUse is what listening on a port still held looks like.
var syscallAddrInUse error = syscall.EADDRINUSE
