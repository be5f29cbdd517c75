-- name: latest_price
-- answers: The latest price of every symbol seen in a range of UTC days, with its time.
-- param: from_date date  first UTC day read (inclusive)
-- param: to_date date  last UTC day read (inclusive)
SELECT
    symbol,
    max(ts) AS ts,
    max_by(price, ts) AS price,
    count(*) AS ticks
FROM ticks
WHERE dt BETWEEN ? AND ?
GROUP BY symbol
ORDER BY symbol
