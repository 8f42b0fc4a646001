module moonbench

go 1.19
