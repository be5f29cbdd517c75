-- name: crossovers
-- answers: Every SMA-5/SMA-20 golden or death cross with its UTC day in [from_date, to_date],
--   by the rule of `stockpipe trend` (docs/design.md, "Crossover"): diff = SMA-5 - SMA-20 from a
--   symbol's 20th price on; golden where diff > 0 and the last non-zero diff before it was
--   < 0, death the mirror; the first non-zero diff emits nothing. The sign is decided exactly
--   as the sign of 4*sum5 - sum20 in DECIMAL (= 20 * diff), never in floating point.
--   History starts at warmup_from: choose it early enough that each symbol has 20 prices and
--   a non-zero diff before from_date (e.g. 45 days for daily bars); with warmup_from at the
--   start of the data the result equals `stockpipe trend` over the same rows.
-- param: warmup_from date  first UTC day read (history for the moving averages)
-- param: to_date date  last UTC day (inclusive)
-- param: from_date date  first UTC day a cross is reported for (inclusive)
-- param: to_date date  last UTC day (inclusive)
WITH windowed AS (
    SELECT
        symbol,
        ts,
        dt,
        price,
        row_number() OVER (PARTITION BY symbol ORDER BY ts) AS n,
        sum(price) OVER (
            PARTITION BY symbol ORDER BY ts ROWS BETWEEN 4 PRECEDING AND CURRENT ROW
        ) AS sum_5,
        sum(price) OVER (
            PARTITION BY symbol ORDER BY ts ROWS BETWEEN 19 PRECEDING AND CURRENT ROW
        ) AS sum_20
    FROM ticks
    WHERE dt BETWEEN ? AND ?
),

signed AS (
    SELECT
        symbol,
        ts,
        dt,
        price,
        sum_5,
        sum_20,
        CASE
            WHEN 4 * sum_5 - sum_20 > 0 THEN 1
            WHEN 4 * sum_5 - sum_20 < 0 THEN -1
            ELSE 0
        END AS diff_sign
    FROM windowed
    WHERE n >= 20
),

-- "The last non-zero diff before it": keep only the non-zero rows, then the previous row of
-- the symbol *among them* is exactly that one. (A tie, diff = 0, neither emits nor resets.)
nonzero AS (
    SELECT
        symbol,
        ts,
        dt,
        price,
        sum_5,
        sum_20,
        diff_sign,
        lag(diff_sign) OVER (PARTITION BY symbol ORDER BY ts) AS previous_sign
    FROM signed
    WHERE diff_sign <> 0
)

SELECT
    symbol,
    ts,
    CASE WHEN diff_sign > 0 THEN 'golden_cross' ELSE 'death_cross' END AS signal,
    -- Multiplying by 0.2 and 0.05 (not dividing) keeps DECIMAL exact on both engines: prices
    -- have <= 10 decimal places, so both averages fit scale 12 without rounding.
    CAST(sum_5 * 0.2 AS DECIMAL(38, 12)) AS sma_5,
    CAST(sum_20 * 0.05 AS DECIMAL(38, 12)) AS sma_20,
    price
FROM nonzero
WHERE previous_sign = -diff_sign
    AND dt BETWEEN ? AND ?
ORDER BY ts, symbol
