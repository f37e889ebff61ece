// A TCP proxy the tests and bench/terminal control: the browser loads the site through it, so
// its terminal WebSocket runs through it too, and `cut()` destroys every connection at once
// (no close frame: what a lost network looks like to both ends), optionally refusing new
// ones for a while (the network stays down).
import net from "node:net";

export async function cutProxy(targetPort) {
  const socks = new Set();
  let blockedUntil = 0;
  const srv = net.createServer((c) => {
    if (Date.now() < blockedUntil) { c.destroy(); return; }
    const u = net.connect(targetPort, "127.0.0.1");
    socks.add(c);
    socks.add(u);
    const done = () => {
      c.destroy();
      u.destroy();
      socks.delete(c);
      socks.delete(u);
    };
    c.on("error", done);
    u.on("error", done);
    c.on("close", done);
    u.on("close", done);
    c.pipe(u);
    u.pipe(c);
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    /** Destroys every open connection; refuses new ones for `downMs`. */
    cut(downMs = 0) {
      blockedUntil = Date.now() + downMs;
      for (const s of socks) s.destroy();
      socks.clear();
    },
    close: () => new Promise((r) => { for (const s of socks) s.destroy(); srv.close(r); }),
  };
}
