set terminal pngcairo size 1000,520 font ",10"
set output "hot-hitrate.png"
set xlabel "seconds since the start of warm-up"
set ylabel "cache hit rate (%)"
set key outside right
set grid
set arrow from 0.0, graph 0 to 0.0, graph 1 nohead dt 2 lc rgb "gray"
set label "warmup" at 0.0, graph 0.97 offset 0.3,0 font ",8"
set arrow from 5.08, graph 0 to 5.08, graph 1 nohead dt 2 lc rgb "gray"
set label "stationary" at 5.08, graph 0.97 offset 0.3,0 font ",8"
plot "plot-hot-resumelb.dat" using 1:2 with linespoints pt 7 ps 0.4 lw 2 lc rgb "#7b1fa2" dt 1 title "resumelb", \
  "plot-hot-resumelb-variance-1.dat" using 1:2 with linespoints pt 7 ps 0.4 lw 2 lc rgb "#00897b" dt 1 title "resumelb-variance-1", \
  "plot-hot-resumelb-classless.dat" using 1:2 with linespoints pt 7 ps 0.4 lw 2 lc rgb "#64b5f6" dt 1 title "resumelb-classless", \
  "plot-hot-haproxy-rr.dat" using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb "#ff9800" dt 1 title "haproxy-rr", \
  "plot-hot-haproxy-leastconn.dat" using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb "#c0a000" dt 1 title "haproxy-leastconn", \
  "plot-hot-haproxy-hash-150.dat" using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb "#1565c0" dt 1 title "haproxy-hash-150", \
  "plot-hot-nginx-leastconn.dat" using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb "#e53935" dt 1 title "nginx-leastconn", \
  "plot-hot-nginx-hash.dat" using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb "#000000" dt 1 title "nginx-hash", \
  "plot-hot-oracle.dat" using 1:2 with linespoints pt 7 ps 0.4 lw 1 lc rgb "#8d6e63" dt 2 title "oracle"
