-- Diagnostic baseline ("replay of our own SQL"): the statements tradewinkd issues for one
-- SubmitOrder on PostgreSQL (market order, sim broker, synchronous fill, warm account),
-- statement for statement, in the same order and transactions, as in server/store (store.c's
-- user lock, store_ops.c's inserts and updates) at the commit that wrote this file: 8 for a buy
-- (2 transactions, nothing outside them), 9 for a closing sell (its fill transaction also
-- records the day trade). The statements are floor.sql's, plus the day trade and the columns
-- the server writes besides (trace and span ids), with the server's spelling of the order
-- lookups (primary key first, store_ops.c ORDER_OF_USER). It measures how much the C code adds
-- to its own SQL; the primary baseline is bench/orders/floor.sql. Run with -M prepared (the
-- server prepares every statement). Variables from the command line: uid0 (first user id of
-- a set the server does not trade for), nusers, now_us, day (trading day, yyyymmdd). Client c
-- is user uid0 + c % nusers. As in floor.sql, audit seq and hash are random (unique key kept;
-- the chain is not linked, which costs the server nothing either: it keeps the chain head in
-- memory).
\set uid :uid0 + (:client_id % :nusers)
\set r random(1, 9000000000000000000)
\set side random(0, 1)
\set seq1 random(1000000000000, 9200000000000000000)
\set seq2 random(1000000000000, 9200000000000000000)
-- T1: admission (user lock + version, order, audit ORDER_ENTRY/ORDER_EXIT)
BEGIN;
INSERT INTO risk_state (user_id) VALUES (:uid) ON CONFLICT (user_id) DO UPDATE SET version = risk_state.version + 1 RETURNING version, (SELECT halted FROM global_state WHERE id = 1);
INSERT INTO orders (user_id, client_order_id, symbol, side, type, tif, qty, limit_price, filled_qty, avg_fill_price, status, origin, mode, broker, broker_key_id, broker_order_id, violations, confirm_by_us, created_at_us, updated_at_us, status_message, note, trace_id, span_id) VALUES (:uid, 'f-' || :r, 'BNCH', CASE WHEN :side = 0 THEN 'buy' ELSE 'sell' END, 'market', 'day', 1000000000, NULL, 0, 0, 'PENDING_SUBMIT', 'user', 'paper', 'sim', NULL, NULL, '[]', NULL, :now_us, :now_us, '', '', '1c2694247889a73d22946ba93eab1b84', 'b4a3719f948d7471') ON CONFLICT (user_id, client_order_id) DO NOTHING RETURNING id AS oid \gset
INSERT INTO audit_events (chain, seq, user_id, time_us, actor, actor_id, action, object_id, outcome, details, prev_hash, hash) VALUES (:uid, :seq1, :uid, :now_us, 'user', 'bench-f000', CASE WHEN :side = 0 THEN 'ORDER_ENTRY' ELSE 'ORDER_EXIT' END, :oid, 'SUCCESS', '{"trace_id":"1c2694247889a73d22946ba93eab1b84","span_id":"b4a3719f948d7471","symbol":"BNCH","side":"' || CASE WHEN :side = 0 THEN 'buy' ELSE 'sell' END || '","qty":"1","type":"market","status":"PENDING_SUBMIT","origin":"user","violations":0}', sha256(int8send(:seq2)), sha256(int8send(:seq1)));
COMMIT;
-- T2: the sim broker's fill (lock + version, fill, position, order update, audit ORDER_FILL;
-- a closing sell also records the day trade)
BEGIN;
INSERT INTO risk_state (user_id) VALUES (:uid) ON CONFLICT (user_id) DO UPDATE SET version = risk_state.version + 1 RETURNING version, (SELECT halted FROM global_state WHERE id = 1);
INSERT INTO fills (user_id, order_id, broker_fill_id, symbol, side, qty, price, time_us) SELECT :uid, :oid, 'cum-1000000000', 'BNCH', CASE WHEN :side = 0 THEN 'buy' ELSE 'sell' END, 1000000000, 100000000, :now_us FROM orders WHERE id = :oid AND user_id + 0 = :uid RETURNING id;
INSERT INTO positions (user_id, symbol, qty, avg_cost, realized_pnl, updated_at_us) VALUES (:uid, 'BNCH', 1000000000 * (1 - :side), 100000000, 0, :now_us) ON CONFLICT (user_id, symbol) DO UPDATE SET qty = excluded.qty, avg_cost = excluded.avg_cost, realized_pnl = excluded.realized_pnl, updated_at_us = excluded.updated_at_us;
UPDATE orders SET status = 'FILLED', filled_qty = 1000000000, avg_fill_price = 100000000, broker_order_id = 'sim-' || lpad(:oid::text, 12, '0'), violations = '[]', updated_at_us = :now_us, status_message = '' WHERE id = :oid AND user_id + 0 = :uid;
INSERT INTO audit_events (chain, seq, user_id, time_us, actor, actor_id, action, object_id, outcome, details, prev_hash, hash) VALUES (:uid, :seq2, :uid, :now_us, 'broker', 'broker', 'ORDER_FILL', :oid, 'SUCCESS', '{"symbol":"BNCH","side":"' || CASE WHEN :side = 0 THEN 'buy' ELSE 'sell' END || '","qty":"1","avg_price":"100"}', sha256(int8send(:seq1)), sha256(int8send(:seq2)));
\if :side = 1
INSERT INTO day_trades (user_id, symbol, trading_day, open_order_id, close_order_id, time_us) VALUES (:uid, 'BNCH', :day, NULL, :oid, :now_us);
\endif
COMMIT;
