module example.com/fma

go 1.22
