// Preloaded into cognito-local (NODE_OPTIONS=--require). cognito-local saves
// a pool's whole store with overlapping asynchronous writes to one file, so
// a burst of sign-ups can leave it stale or not JSON at all: codes go
// missing and a restart on DATA_DIR fails. Each save here is whole and in
// order: written to a temporary file, then renamed over the store.
const fs = require("fs");
const engine = require("stormdb").localFileEngine;

engine.prototype.write = function (data) {
  const tmp = `${this.path}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, this.serialize(data));
  fs.renameSync(tmp, this.path);
  return Promise.resolve();
};
