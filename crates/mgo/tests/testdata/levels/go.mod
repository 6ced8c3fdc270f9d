module example.com/levels

go 1.22
