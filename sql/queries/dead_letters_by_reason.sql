-- name: dead_letters_by_reason
-- answers: Data quality: how many records the consumer dead-lettered, per UTC day and reason
--   (not_json, missing_field, bad_price, ..., late, future_timestamp, processing_error).
-- param: from_date date  first UTC day (inclusive)
-- param: to_date date  last UTC day (inclusive)
SELECT
    dt,
    reason,
    count(*) AS records
FROM dead_letters
WHERE dt BETWEEN ? AND ?
GROUP BY dt, reason
ORDER BY dt, reason
