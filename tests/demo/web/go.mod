module moonshim/demo

go 1.26
