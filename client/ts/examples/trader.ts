/**
 * The trader story from the web backend's side: submit an automation order (which waits for
 * the user's confirmation), confirm it, and follow its updates on the stream.
 *
 * Run against a local server:  TW_TOKEN=$(twctl dev-token --sub alice --role user) \
 *   node dist/examples/trader.js http://127.0.0.1:50051
 * Copy this into the backend; replace the token source with the signed-in user's JWT.
 */
import {
  Code,
  ConnectError,
  OrderOrigin,
  OrderSide,
  OrderStatus,
  OrderType,
  TimeInForce,
  createTradewinkClients,
  createTradewinkTransport,
  type Order,
} from "../src/index.js";

export async function runTrader(baseUrl: string, token: string): Promise<Order> {
  const tw = createTradewinkClients(createTradewinkTransport({ baseUrl, token }));

  // Start following updates first so nothing between submit and confirm is missed.
  const stop = new AbortController();
  const updates = (async () => {
    try {
      for await (const msg of tw.orders.streamOrderUpdates({ fromSequence: 0n }, { signal: stop.signal })) {
        const u = msg.update;
        if (u?.order) {
          console.log(`update #${u.sequence}: ${u.order.id} ${OrderStatus[u.order.status]}`);
        }
      }
    } catch (err) {
      if (!(err instanceof ConnectError && err.code === Code.Canceled)) throw err;
    }
  })();

  const { order } = await tw.orders.submitOrder({
    clientOrderId: `web-${Date.now()}`,
    symbol: "AAPL",
    side: OrderSide.BUY,
    type: OrderType.LIMIT,
    timeInForce: TimeInForce.DAY,
    qty: "10", // decimal strings, never floats
    limitPrice: "187.25",
    origin: OrderOrigin.AUTOMATION,
  });
  if (!order) throw new Error("server returned no order");
  // A risk rejection is not an RPC error: the order comes back REJECTED with violations.
  if (order.status === OrderStatus.REJECTED) {
    for (const v of order.violations) console.log(`rejected: ${v.message}`);
    stop.abort();
    await updates;
    return order;
  }

  let current = order;
  if (order.status === OrderStatus.PENDING_CONFIRMATION) {
    const confirmed = await tw.orders.confirmOrder({ orderId: order.id });
    if (!confirmed.order) throw new Error("server returned no order");
    current = confirmed.order;
  }
  console.log(`order ${current.id}: ${OrderStatus[current.status]}`);
  stop.abort();
  await updates;
  return current;
}

const isMain = process.argv[1]?.endsWith("trader.js") ?? false;
if (isMain) {
  const baseUrl = process.argv[2] ?? "http://127.0.0.1:50051";
  const token = process.env.TW_TOKEN ?? "";
  runTrader(baseUrl, token).catch((err: unknown) => {
    console.error(err instanceof ConnectError ? `${Code[err.code]}: ${err.rawMessage}` : err);
    process.exit(1);
  });
}
