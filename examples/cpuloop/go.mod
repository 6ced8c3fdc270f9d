module example.com/cpuloop

go 1.22
