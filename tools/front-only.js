// Preloaded (NODE_OPTIONS=--require) into a Node server that the local run
// puts behind a Go front of ours (local/guard): the server answers
// only requests carrying the front's token, so a web page that finds this
// port, or reaches it by a rebound DNS name, gets a 403 and nothing else.
const http = require("http");

const token = process.env.KANDY_FRONT_TOKEN;
if (!token) throw new Error("front-only.js: KANDY_FRONT_TOKEN is not set");
delete process.env.KANDY_FRONT_TOKEN;

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, res) {
  if ((event === "request" || event === "checkContinue") && req.headers["x-kandy-front"] !== token) {
    res.writeHead(403, { "Content-Type": "text/plain", Connection: "close" });
    res.end("refused: only the local run's front may call this server\n");
    return true;
  }
  return emit.apply(this, arguments);
};
