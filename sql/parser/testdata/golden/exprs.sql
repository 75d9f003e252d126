-- Expressions: precedence, literals, special forms.
SELECT a OR b AND NOT c, (a OR b) AND c, NOT (a AND b), NOT NOT a;
SELECT 1 + 2 * 3 - 4 / 5 % 6, (1 + 2) * 3, 1 - (2 - 3), - -x, -(a + b), +a, 'a' || 'b' || c;
SELECT a = b, a <> b, a != b, a < b, a <= b, a > b, a >= b, (a = b) = c, a = (b = c);
SELECT x BETWEEN 1 AND 10 AND y, x NOT BETWEEN SYMMETRIC 10 AND 1, x BETWEEN ASYMMETRIC a + 1 AND b * 2;
SELECT x IN (1, 2, 3), x NOT IN (SELECT y FROM u), (x IN (1)) IN (TRUE);
SELECT name LIKE 'a%', name NOT LIKE 'a!%' ESCAPE '!', name SIMILAR TO '[ab]+', name NOT SIMILAR TO 'x';
SELECT x IS NULL, x IS NOT NULL, b IS TRUE, b IS NOT FALSE, b IS UNKNOWN, a IS DISTINCT FROM b, a IS NOT DISTINCT FROM b;
SELECT EXISTS (SELECT 1 FROM u), NOT EXISTS (SELECT 1 FROM u), NOT (EXISTS (SELECT 1)), (SELECT MAX(y) FROM u) AS m;
SELECT TRUE, FALSE, NULL, 42, 0.908, 1e3, 2.5E-3, .5, 'it''s', 'multi
line';
SELECT INTERVAL '4' SECOND, INTERVAL '1' DAY TO HOUR, INTERVAL -'1' HOUR, INTERVAL '1-2' YEAR TO MONTH, -INTERVAL '3' MINUTE;
SELECT TIMESTAMP '2020-01-01 00:00:00', DATE '2020-01-01', TIME '12:00:00';
SELECT CASE WHEN a = 1 THEN 'one' WHEN a = 2 THEN 'two' ELSE 'many' END, CASE a WHEN 1 THEN 'one' END;
SELECT CAST(x AS BIGINT), TRY_CAST(s AS DECIMAL(10, 2)), CAST(t AS TIMESTAMP(3)), CAST(r AS ROW<a INT, b STRING>);
SELECT EXTRACT(YEAR FROM ts), EXTRACT(hour FROM ts);
SELECT FLOOR(ts TO HOUR), CEIL(ts TO DAY), CEILING(ts TO minute), FLOOR(x), CEIL(1.5), FLOOR(ts, HOUR);
SELECT COUNT(*), COUNT(DISTINCT x), count(*) filter (where price < 10000), SUM(ALL x);
SELECT SUBSTRING(s FROM 2 FOR 3), SUBSTRING(s FROM 2), SUBSTRING(s, 1, 2), SUBSTRING(s, 1, 2, 3);
SELECT TRIM(BOTH 'x' FROM s), TRIM(LEADING FROM s), TRIM(TRAILING ' ' FROM s), TRIM(s), TRIM('x' FROM s);
SELECT POSITION('a' IN s), POSITION('a', s), POSITION(a || b IN s), OVERLAY(s PLACING 'xx' FROM 2 FOR 1);
SELECT ROW(a, b), (a, b), ARRAY[1, 2, 3], ARRAY[], arr[1], m['k'], (r).f, f(x).g, arr[1].f, a.b.c;
SELECT `dateTime`, `a``b`, t.`dateTime`, A.dateTime;
SELECT CURRENT_TIMESTAMP, CURRENT_DATE, LOCALTIMESTAMP, NOW(), PROCTIME();
SELECT HOUR(ts), DAY(ts), day, minute, `value`, value, key, user, date, timestamp, LEFT(s, 2), RIGHT(s, 2);
SELECT DATE_FORMAT(`dateTime`, 'yyyy-MM-dd') AS `day` FROM t /* block
comment */ -- line comment
WHERE a = 1;
