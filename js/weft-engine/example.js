// A minimal weft-engine server: `node example.js`, then `curl -d hi http://127.0.0.1:8081/`.
import { createServer } from './index.js';

const server = createServer((req, res) => {
  if (req.method === 'POST') {
    // Stream the body back as it is read (the engine pulls it only while the output has room).
    res.head(200, [['Content-Type', 'application/octet-stream']]);
    req.ondata = (chunk) => res.write(chunk);
    req.onend = () => res.end();
    return;
  }
  res.full(200, [['Content-Type', 'text/plain; charset=utf-8']], `you asked for ${req.path}\n`);
});
server.listen(8081, '127.0.0.1', () => console.log('listening on http://127.0.0.1:8081/'));
