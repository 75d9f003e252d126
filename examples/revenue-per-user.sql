-- Revenue per user per minute over a file of orders, in SQL: the
-- revenue-per-user-file.yaml pipeline written as Flink SQL.
--
--   sluice sql examples/revenue-per-user.sql

CREATE TABLE orders (
  ts       BIGINT,
  order_id BIGINT,
  user_id  STRING,
  status   STRING,
  price    DOUBLE,
  qty      INT,
  channel  STRING,
  order_time AS TO_TIMESTAMP_LTZ(ts, 3),
  WATERMARK FOR order_time AS order_time - INTERVAL '5' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = 'examples/data/orders.jsonl',
  'format' = 'json',
  -- the file has a broken line on purpose: skip it (without this option
  -- the job stops there and says which line)
  'json.ignore-parse-errors' = 'true'
);

CREATE TABLE revenue (
  user_id      STRING,
  window_start TIMESTAMP(3),
  window_end   TIMESTAMP(3),
  orders       BIGINT,
  revenue      DOUBLE
) WITH (
  'connector' = 'print'
);

INSERT INTO revenue
SELECT user_id, window_start, window_end, COUNT(*), SUM(price * qty)
FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(order_time), INTERVAL '1' MINUTE))
WHERE status = 'paid'
GROUP BY user_id, window_start, window_end;
