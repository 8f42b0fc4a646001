module moonshim/bench/scrape

go 1.26
