// Preloaded (NODE_OPTIONS=--require) into a Node server that the local run
// puts behind a Go front of ours (local/guard): the server listens on the
// Unix socket KANDY_BACKEND_SOCKET instead of the TCP port it was given,
// so no web page can reach it, and answers only requests carrying the
// front's token.
const fs = require("fs");
const http = require("http");

const socket = process.env.KANDY_BACKEND_SOCKET;
const token = process.env.KANDY_FRONT_TOKEN;
if (!socket || !token) throw new Error("front-only.js: set KANDY_BACKEND_SOCKET and KANDY_FRONT_TOKEN");
delete process.env.KANDY_BACKEND_SOCKET;
delete process.env.KANDY_FRONT_TOKEN;

const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (...args) {
  const done = args.find((a) => typeof a === "function");
  try {
    fs.unlinkSync(socket);
  } catch (e) {
    if (e.code !== "ENOENT") throw e;
  }
  return done ? listen.call(this, socket, done) : listen.call(this, socket);
};

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, res) {
  if ((event === "request" || event === "checkContinue") && req.headers["x-kandy-front"] !== token) {
    res.writeHead(403, { "Content-Type": "text/plain", Connection: "close" });
    res.end("refused: only the local run's front may call this server\n");
    return true;
  }
  return emit.apply(this, arguments);
};
