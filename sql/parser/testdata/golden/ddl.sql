-- DDL: tables with every kind of column, views, functions, drops.
CREATE TEMPORARY TABLE IF NOT EXISTS cat.db.orders (
  id BIGINT NOT NULL,
  `user` VARCHAR(20) COMMENT 'who ordered',
  amount DECIMAL(10, 2),
  price DEC(5),
  qty INTEGER,
  ok BOOL,
  ratio DOUBLE PRECISION,
  f REAL,
  code CHARACTER VARYING(3),
  c CHAR(2),
  s STRING,
  d DATE,
  t TIME(3),
  ts TIMESTAMP(3) WITHOUT TIME ZONE,
  lts TIMESTAMP(3) WITH LOCAL TIME ZONE,
  ltz TIMESTAMP_LTZ(6),
  tags ARRAY<STRING NOT NULL>,
  attrs MAP<STRING, BIGINT>,
  nested ROW<a INT, `b` ROW(x DOUBLE, y DOUBLE) 'a point'>,
  kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  `partition` INT METADATA VIRTUAL,
  headers MAP<STRING, BYTES> METADATA,
  total AS amount * qty,
  proc AS PROCTIME(),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND,
  CONSTRAINT pk PRIMARY KEY (id, `user`) NOT ENFORCED
) COMMENT 'orders table'
PARTITIONED BY (d)
WITH (
  'connector' = 'kafka',
  'topic' = 'it''s',
  'format' = 'json'
);

create table t2 (k int primary key not enforced, v string) with ();

CREATE VIEW v (a, b) AS SELECT x, y FROM t;
CREATE TEMPORARY VIEW IF NOT EXISTS v2 AS WITH w AS (SELECT 1 AS one) SELECT * FROM w;
CREATE FUNCTION f AS 'com.example.F';
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS g AS 'go.g' LANGUAGE GO;
CREATE TEMPORARY FUNCTION h AS 'h' language python;
DROP TABLE t;
DROP TEMPORARY VIEW IF EXISTS db.v;
DROP FUNCTION IF EXISTS f;
SET;
SET 'table.exec.mini-batch.enabled' = 'true';
SET parallelism.default = 4;
SET execution.checkpointing.interval = 10s;
RESET;
RESET 'parallelism.default';
RESET table.local-time-zone;
SHOW TABLES;
show views;
SHOW FUNCTIONS;
DESCRIBE orders;
DESC cat.db.orders;
