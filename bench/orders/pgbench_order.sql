-- pgbench baseline for the order path: the SQL tradewinkd issues for one SubmitOrder on
-- PostgreSQL (market order, sim broker, synchronous fill), statement for statement, in the
-- same order and transactions, as captured from the server's log with log_statement=all
-- (bench/orders/README.md). Run with -M prepared (the server prepares every statement).
-- Variables from the command line: uid0 (first bench user id), nusers, day (trading day
-- window start, yyyymmdd), now_us. Client c is user uid0 + c % nusers, so like the load
-- generator's threads each client is its own user and the per-user lock is uncontended.
\set uid :uid0 + (:client_id % :nusers)
\set r random(1, 9000000000000000000)
\set side random(0, 1)
-- idempotency lookup and account settings (outside any transaction)
SELECT id, user_id, client_order_id, symbol, side, type, tif, qty, limit_price, filled_qty, avg_fill_price, status, origin, mode, broker, broker_key_id, broker_order_id, violations, confirm_by_us, created_at_us, updated_at_us FROM orders WHERE user_id = :uid AND client_order_id = 'pgb-' || :r;
SELECT id, subject, role, salt, trading_mode, autonomous, default_broker_key_id, created_at_us FROM users WHERE id = :uid;
-- T1: admission (user lock, risk snapshot, order insert, audit ORDER_ENTRY)
BEGIN;
INSERT INTO risk_state (user_id) VALUES (:uid) ON CONFLICT (user_id) DO NOTHING;
SELECT user_id FROM risk_state WHERE user_id = :uid FOR UPDATE;
SELECT daily_loss_bps, daily_loss_abs, drawdown_bps, max_positions, max_sector_bps, max_notional_bps, collar_bps, dup_window_s, max_orders_per_s, pdt_enabled FROM risk_limits WHERE user_id = :uid;
SELECT trading_state, halted_by, halt_reason, breaker_until_us, sod_equity, peak_equity, trading_day FROM risk_state WHERE user_id = :uid;
SELECT halted, halted_by, halt_reason, updated_at_us FROM global_state WHERE id = 1;
SELECT symbol, qty, avg_cost, realized_pnl FROM positions WHERE user_id = :uid ORDER BY symbol;
SELECT id, user_id, client_order_id, symbol, side, type, tif, qty, limit_price, filled_qty, avg_fill_price, status, origin, mode, broker, broker_key_id, broker_order_id, violations, confirm_by_us, created_at_us, updated_at_us FROM orders WHERE user_id = :uid AND (CAST(NULL AS TEXT) IS NULL OR status = NULL) AND (0 = 0 OR id < 0) ORDER BY id DESC LIMIT 500;
SELECT symbol, trading_day, open_order_id, close_order_id, time_us FROM day_trades WHERE user_id = :uid AND trading_day >= :day ORDER BY trading_day, id;
INSERT INTO orders (user_id, client_order_id, symbol, side, type, tif, qty, limit_price, filled_qty, avg_fill_price, status, origin, mode, broker, broker_key_id, broker_order_id, violations, confirm_by_us, created_at_us, updated_at_us) VALUES (:uid, 'pgb-' || :r, 'BNCH', CASE WHEN :side = 0 THEN 'buy' ELSE 'sell' END, 'market', 'day', 1000000000, NULL, 0, 0, 'PENDING_SUBMIT', 'user', 'paper', 'sim', NULL, NULL, '[]', NULL, :now_us, :now_us) ON CONFLICT (user_id, client_order_id) DO NOTHING RETURNING id AS oid \gset
SELECT seq, hash FROM audit_events WHERE chain = :uid ORDER BY seq DESC LIMIT 1;
SELECT seq AS aseq, hash AS ahash FROM audit_events WHERE chain = :uid ORDER BY seq DESC LIMIT 1 \gset
INSERT INTO audit_events (chain, seq, user_id, time_us, actor, actor_id, action, object_id, outcome, details, prev_hash, hash) VALUES (:uid, :aseq + 1, :uid, :now_us, 'user', 'pgbench', 'ORDER_ENTRY', :oid, 'SUCCESS', '{"symbol":"BNCH","side":"buy","qty":"1","type":"market","status":"PENDING_SUBMIT","origin":"user","violations":0}', :ahash, sha256(:ahash::bytea || 'entry'::bytea));
COMMIT;
-- T2: the sim broker's fill (order re-read, fill, position upsert, order update, audit
-- ORDER_FILL, then the risk view reloaded for the post-fill assessment)
BEGIN;
INSERT INTO risk_state (user_id) VALUES (:uid) ON CONFLICT (user_id) DO NOTHING;
SELECT user_id FROM risk_state WHERE user_id = :uid FOR UPDATE;
SELECT id, user_id, client_order_id, symbol, side, type, tif, qty, limit_price, filled_qty, avg_fill_price, status, origin, mode, broker, broker_key_id, broker_order_id, violations, confirm_by_us, created_at_us, updated_at_us FROM orders WHERE user_id = :uid AND id = :oid;
INSERT INTO fills (user_id, order_id, broker_fill_id, symbol, side, qty, price, time_us) SELECT :uid, :oid, 'cum-1000000000', 'BNCH', 'buy', 1000000000, 100000000, :now_us FROM orders WHERE user_id = :uid AND id = :oid RETURNING id;
SELECT symbol, qty, avg_cost, realized_pnl FROM positions WHERE user_id = :uid AND symbol = 'BNCH';
INSERT INTO positions (user_id, symbol, qty, avg_cost, realized_pnl, updated_at_us) VALUES (:uid, 'BNCH', 1000000000 * (1 - :side), 100000000, 0, :now_us) ON CONFLICT (user_id, symbol) DO UPDATE SET qty = excluded.qty, avg_cost = excluded.avg_cost, realized_pnl = excluded.realized_pnl, updated_at_us = excluded.updated_at_us;
UPDATE orders SET status = 'FILLED', filled_qty = 1000000000, avg_fill_price = 100000000, broker_order_id = 'sim-' || :oid, violations = '[]', updated_at_us = :now_us WHERE user_id = :uid AND id = :oid;
SELECT seq, hash FROM audit_events WHERE chain = :uid ORDER BY seq DESC LIMIT 1;
SELECT seq AS aseq, hash AS ahash FROM audit_events WHERE chain = :uid ORDER BY seq DESC LIMIT 1 \gset
INSERT INTO audit_events (chain, seq, user_id, time_us, actor, actor_id, action, object_id, outcome, details, prev_hash, hash) VALUES (:uid, :aseq + 1, :uid, :now_us, 'broker', 'broker', 'ORDER_FILL', :oid, 'SUCCESS', '{"symbol":"BNCH","side":"buy","qty":"1","avg_price":"100"}', :ahash, sha256(:ahash::bytea || 'fill'::bytea));
SELECT id, user_id, client_order_id, symbol, side, type, tif, qty, limit_price, filled_qty, avg_fill_price, status, origin, mode, broker, broker_key_id, broker_order_id, violations, confirm_by_us, created_at_us, updated_at_us FROM orders WHERE user_id = :uid AND (CAST(NULL AS TEXT) IS NULL OR status = NULL) AND (0 = 0 OR id < 0) ORDER BY id DESC LIMIT 500;
SELECT symbol, qty, avg_cost, realized_pnl FROM positions WHERE user_id = :uid ORDER BY symbol;
SELECT symbol, trading_day, open_order_id, close_order_id, time_us FROM day_trades WHERE user_id = :uid AND trading_day >= :day ORDER BY trading_day, id;
SELECT daily_loss_bps, daily_loss_abs, drawdown_bps, max_positions, max_sector_bps, max_notional_bps, collar_bps, dup_window_s, max_orders_per_s, pdt_enabled FROM risk_limits WHERE user_id = :uid;
SELECT trading_state, halted_by, halt_reason, breaker_until_us, sod_equity, peak_equity, trading_day FROM risk_state WHERE user_id = :uid;
SELECT halted, halted_by, halt_reason, updated_at_us FROM global_state WHERE id = 1;
SELECT symbol, qty, avg_cost, realized_pnl FROM positions WHERE user_id = :uid ORDER BY symbol;
SELECT id, user_id, client_order_id, symbol, side, type, tif, qty, limit_price, filled_qty, avg_fill_price, status, origin, mode, broker, broker_key_id, broker_order_id, violations, confirm_by_us, created_at_us, updated_at_us FROM orders WHERE user_id = :uid AND (CAST(NULL AS TEXT) IS NULL OR status = NULL) AND (0 = 0 OR id < 0) ORDER BY id DESC LIMIT 500;
SELECT symbol, trading_day, open_order_id, close_order_id, time_us FROM day_trades WHERE user_id = :uid AND trading_day >= :day ORDER BY trading_day, id;
COMMIT;
-- T3: the post-fill risk re-assessment under the user lock
BEGIN;
INSERT INTO risk_state (user_id) VALUES (:uid) ON CONFLICT (user_id) DO NOTHING;
SELECT user_id FROM risk_state WHERE user_id = :uid FOR UPDATE;
SELECT id, user_id, client_order_id, symbol, side, type, tif, qty, limit_price, filled_qty, avg_fill_price, status, origin, mode, broker, broker_key_id, broker_order_id, violations, confirm_by_us, created_at_us, updated_at_us FROM orders WHERE user_id = :uid AND id = :oid;
SELECT daily_loss_bps, daily_loss_abs, drawdown_bps, max_positions, max_sector_bps, max_notional_bps, collar_bps, dup_window_s, max_orders_per_s, pdt_enabled FROM risk_limits WHERE user_id = :uid;
SELECT trading_state, halted_by, halt_reason, breaker_until_us, sod_equity, peak_equity, trading_day FROM risk_state WHERE user_id = :uid;
SELECT halted, halted_by, halt_reason, updated_at_us FROM global_state WHERE id = 1;
SELECT symbol, qty, avg_cost, realized_pnl FROM positions WHERE user_id = :uid ORDER BY symbol;
SELECT id, user_id, client_order_id, symbol, side, type, tif, qty, limit_price, filled_qty, avg_fill_price, status, origin, mode, broker, broker_key_id, broker_order_id, violations, confirm_by_us, created_at_us, updated_at_us FROM orders WHERE user_id = :uid AND (CAST(NULL AS TEXT) IS NULL OR status = NULL) AND (0 = 0 OR id < 0) ORDER BY id DESC LIMIT 500;
SELECT symbol, trading_day, open_order_id, close_order_id, time_us FROM day_trades WHERE user_id = :uid AND trading_day >= :day ORDER BY trading_day, id;
COMMIT;
-- the reply: the order as stored
SELECT id, user_id, client_order_id, symbol, side, type, tif, qty, limit_price, filled_qty, avg_fill_price, status, origin, mode, broker, broker_key_id, broker_order_id, violations, confirm_by_us, created_at_us, updated_at_us FROM orders WHERE user_id = :uid AND id = :oid;
