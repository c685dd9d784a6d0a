-- pgbench floor of the order path (issue 18): the least durable work one filled market order
-- needs, on the server's own tables and indexes with the values the server writes, and
-- nothing else: no reads besides what the writes return, no risk evaluation, no gRPC.
--   T1 admission: lock the user's row and bump its version, insert the order, its audit event.
--   T2 fill: lock + version, the fill row, the position upsert, the order update, the audit
--   event.
-- 2 commits, 8 statements besides BEGIN/COMMIT. Run with -M prepared (the server prepares
-- every statement). Variables from the command line: uid0 (first user id of a set of users
-- the server does not trade for, so neither side's audit chain or version sees the other),
-- nusers, now_us. Client c is user uid0 + c % nusers.
-- Audit seq and hash are random: the unique key (chain, seq) is kept by drawing seq from
-- [1e12, 9.2e18] (the server's own seqs are small and on other chains); the hashes are 32
-- bytes like the server's. The server's closing sells also insert a day_trades row (PDT
-- history); that is not in the floor.
\set uid :uid0 + (:client_id % :nusers)
\set r random(1, 9000000000000000000)
\set side random(0, 1)
\set seq1 random(1000000000000, 9200000000000000000)
\set seq2 random(1000000000000, 9200000000000000000)
BEGIN;
INSERT INTO risk_state (user_id) VALUES (:uid) ON CONFLICT (user_id) DO UPDATE SET version = risk_state.version + 1 RETURNING version, (SELECT halted FROM global_state WHERE id = 1);
INSERT INTO orders (user_id, client_order_id, symbol, side, type, tif, qty, limit_price, filled_qty, avg_fill_price, status, origin, mode, broker, broker_key_id, broker_order_id, violations, confirm_by_us, created_at_us, updated_at_us, status_message, note) VALUES (:uid, 'f-' || :r, 'BNCH', CASE WHEN :side = 0 THEN 'buy' ELSE 'sell' END, 'market', 'day', 1000000000, NULL, 0, 0, 'PENDING_SUBMIT', 'user', 'paper', 'sim', NULL, NULL, '[]', NULL, :now_us, :now_us, '', '') ON CONFLICT (user_id, client_order_id) DO NOTHING RETURNING id AS oid \gset
INSERT INTO audit_events (chain, seq, user_id, time_us, actor, actor_id, action, object_id, outcome, details, prev_hash, hash) VALUES (:uid, :seq1, :uid, :now_us, 'user', 'bench-f000', CASE WHEN :side = 0 THEN 'ORDER_ENTRY' ELSE 'ORDER_EXIT' END, :oid, 'SUCCESS', '{"trace_id":"1c2694247889a73d22946ba93eab1b84","span_id":"b4a3719f948d7471","symbol":"BNCH","side":"' || CASE WHEN :side = 0 THEN 'buy' ELSE 'sell' END || '","qty":"1","type":"market","status":"PENDING_SUBMIT","origin":"user","violations":0}', sha256(int8send(:seq2)), sha256(int8send(:seq1)));
COMMIT;
BEGIN;
INSERT INTO risk_state (user_id) VALUES (:uid) ON CONFLICT (user_id) DO UPDATE SET version = risk_state.version + 1 RETURNING version, (SELECT halted FROM global_state WHERE id = 1);
INSERT INTO fills (user_id, order_id, broker_fill_id, symbol, side, qty, price, time_us) SELECT :uid, :oid, 'cum-1000000000', 'BNCH', CASE WHEN :side = 0 THEN 'buy' ELSE 'sell' END, 1000000000, 100000000, :now_us FROM orders WHERE user_id = :uid AND id = :oid RETURNING id;
INSERT INTO positions (user_id, symbol, qty, avg_cost, realized_pnl, updated_at_us) VALUES (:uid, 'BNCH', 1000000000 * (1 - :side), 100000000, 0, :now_us) ON CONFLICT (user_id, symbol) DO UPDATE SET qty = excluded.qty, avg_cost = excluded.avg_cost, realized_pnl = excluded.realized_pnl, updated_at_us = excluded.updated_at_us;
UPDATE orders SET status = 'FILLED', filled_qty = 1000000000, avg_fill_price = 100000000, broker_order_id = 'sim-' || lpad(:oid::text, 12, '0'), violations = '[]', updated_at_us = :now_us, status_message = '' WHERE user_id = :uid AND id = :oid;
INSERT INTO audit_events (chain, seq, user_id, time_us, actor, actor_id, action, object_id, outcome, details, prev_hash, hash) VALUES (:uid, :seq2, :uid, :now_us, 'broker', 'broker', 'ORDER_FILL', :oid, 'SUCCESS', '{"symbol":"BNCH","side":"' || CASE WHEN :side = 0 THEN 'buy' ELSE 'sell' END || '","qty":"1","avg_price":"100"}', sha256(int8send(:seq1)), sha256(int8send(:seq2)));
COMMIT;
