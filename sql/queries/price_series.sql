-- name: price_series
-- answers: One symbol's prices in a range of UTC days with SMA-5 and SMA-20 (null until the
--   symbol has 5 / 20 prices since warmup_from) and the anomaly flag: what `stockpipe chart`
--   draws.
-- param: symbol varchar  the symbol, Yahoo form (AAPL, BRK-B, ^GSPC)
-- param: warmup_from date  first UTC day read (history for the moving averages)
-- param: to_date date  last UTC day (inclusive)
-- param: from_date date  first UTC day returned (inclusive)
-- param: to_date date  last UTC day (inclusive)
WITH windowed AS (
    SELECT
        ts,
        dt,
        price,
        anomaly,
        row_number() OVER (ORDER BY ts) AS n,
        sum(price) OVER (ORDER BY ts ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS sum_5,
        sum(price) OVER (ORDER BY ts ROWS BETWEEN 19 PRECEDING AND CURRENT ROW) AS sum_20
    FROM ticks
    WHERE symbol = ?
        AND dt BETWEEN ? AND ?
)

SELECT
    ts,
    price,
    CASE WHEN n >= 5 THEN CAST(sum_5 * 0.2 AS DECIMAL(38, 12)) END AS sma_5,
    CASE WHEN n >= 20 THEN CAST(sum_20 * 0.05 AS DECIMAL(38, 12)) END AS sma_20,
    anomaly
FROM windowed
WHERE dt BETWEEN ? AND ?
ORDER BY ts
