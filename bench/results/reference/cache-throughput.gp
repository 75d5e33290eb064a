set terminal pngcairo size 1000,520 font ",10"
set output "cache-throughput.png"
set xlabel "seconds since the start of warm-up"
set ylabel "requests/s"
set key outside right
set grid
set arrow from 0.0, graph 0 to 0.0, graph 1 nohead dt 2 lc rgb "gray"
set label "warmup" at 0.0, graph 0.97 offset 0.3,0 font ",8"
set arrow from 6.06, graph 0 to 6.06, graph 1 nohead dt 2 lc rgb "gray"
set label "stationary" at 6.06, graph 0.97 offset 0.3,0 font ",8"
set arrow from 12.2, graph 0 to 12.2, graph 1 nohead dt 2 lc rgb "gray"
set label "shift" at 12.2, graph 0.97 offset 0.3,0 font ",8"
set arrow from 20.46, graph 0 to 20.46, graph 1 nohead dt 2 lc rgb "gray"
set label "add" at 20.46, graph 0.97 offset 0.3,0 font ",8"
set arrow from 28.53, graph 0 to 28.53, graph 1 nohead dt 2 lc rgb "gray"
set label "remove" at 28.53, graph 0.97 offset 0.3,0 font ",8"
plot "plot-cache-resumelb-seg.dat" using 1:3 with linespoints pt 7 ps 0.4 lw 2 lc rgb "#7b1fa2" dt 1 title "resumelb", \
  "plot-cache-resumelb-variance-1-seg.dat" using 1:3 with linespoints pt 7 ps 0.4 lw 2 lc rgb "#00897b" dt 1 title "resumelb-variance-1", \
  "plot-cache-resumelb-classless-seg.dat" using 1:3 with linespoints pt 7 ps 0.4 lw 2 lc rgb "#64b5f6" dt 1 title "resumelb-classless", \
  "plot-cache-haproxy-rr-seg.dat" using 1:3 with linespoints pt 7 ps 0.4 lw 1 lc rgb "#ff9800" dt 1 title "haproxy-rr", \
  "plot-cache-haproxy-leastconn-seg.dat" using 1:3 with linespoints pt 7 ps 0.4 lw 1 lc rgb "#c0a000" dt 1 title "haproxy-leastconn", \
  "plot-cache-haproxy-hash-200-seg.dat" using 1:3 with linespoints pt 7 ps 0.4 lw 1 lc rgb "#1565c0" dt 1 title "haproxy-hash-200", \
  "plot-cache-nginx-leastconn-seg.dat" using 1:3 with linespoints pt 7 ps 0.4 lw 1 lc rgb "#e53935" dt 1 title "nginx-leastconn", \
  "plot-cache-nginx-hash-seg.dat" using 1:3 with linespoints pt 7 ps 0.4 lw 1 lc rgb "#000000" dt 1 title "nginx-hash", \
  "plot-cache-oracle-seg.dat" using 1:3 with linespoints pt 7 ps 0.4 lw 1 lc rgb "#8d6e63" dt 2 title "oracle"
