// The bare node:http plumbing the floor server and the baton-lean what-if share: a JSON
// answer with no-store, and a JSON body read up to a limit (null when absent or malformed).

/** Writes `body` as JSON with `status`, its length and `Cache-Control: no-store`. */
export function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** The request's JSON body, or null; a body over `maxBytes` destroys the request. */
export function readJson(req, maxBytes) {
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > maxBytes) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        resolve(null);
      }
    });
    req.on('error', () => resolve(null));
  });
}
