-- name: anomalies
-- answers: Every anomalous tick (|change_pct| > 5) in a range of UTC days, oldest first.
-- param: from_date date  first UTC day (inclusive)
-- param: to_date date  last UTC day (inclusive)
SELECT
    symbol,
    ts,
    prev_price,
    price,
    change,
    change_pct
FROM ticks
WHERE dt BETWEEN ? AND ?
    AND anomaly
ORDER BY ts, symbol
