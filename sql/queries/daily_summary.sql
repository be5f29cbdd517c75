-- name: daily_summary
-- answers: Per symbol and UTC day: open and close (first and last price by time), high, low,
--   total volume, number of ticks and number of anomalies (> 5 % moves).
-- param: from_date date  first UTC day (inclusive)
-- param: to_date date  last UTC day (inclusive)
SELECT
    dt,
    symbol,
    min_by(price, ts) AS open,
    max(price) AS high,
    min(price) AS low,
    max_by(price, ts) AS close,
    sum(volume) AS volume,
    count(*) AS ticks,
    count_if(anomaly) AS anomalies
FROM ticks
WHERE dt BETWEEN ? AND ?
GROUP BY dt, symbol
ORDER BY dt, symbol
