module moonbench

// Built by the Makefile's GO (Go 1.26.8). The go line is the language
// version and sets the GODEBUG defaults the twin runs with: Go 1.26's (Go
// 1.23 timers and so on), not those of Go 1.19 compatibility.
go 1.26
