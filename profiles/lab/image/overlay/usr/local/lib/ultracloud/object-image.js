// VM images kept as objects (lightningstor, through a presigned S3 URL): the API records each
// file's digest when it is imported, and a worker verifies every byte it fetches against it, so
// an object replaced or damaged after the import never boots.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');

const isHttpUrl = (v) => typeof v === 'string' && v.length < 4096 && /^http:\/\/[^\s/?#]+\/[^\s]*$/.test(v);
/** A URL as it may be named in errors and logs: a presigned URL's query holds its signature. */
const shown = (url) => url.split('?')[0];

/** GET `url` into a hash and, when given, a file: { sha256, bytes }. */
function fetchInto(url, file, timeoutMs) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`${shown(url)} answered HTTP ${res.statusCode}`));
      }
      const hash = crypto.createHash('sha256');
      const out = file ? fs.createWriteStream(file) : null;
      out?.on('error', (e) => {
        req.destroy();
        reject(new Error(`writing ${file}: ${e.message}`)); // a full disk fails this image, not the agent
      });
      let bytes = 0;
      res.on('data', (d) => {
        hash.update(d);
        bytes += d.length;
        out?.write(d);
      });
      res.on('error', reject);
      res.on('end', () => {
        const done = () => resolve({ sha256: hash.digest('hex'), bytes });
        if (!out) return done();
        out.end((e) => (e ? reject(new Error(`writing ${file}: ${e.message}`)) : done()));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${shown(url)} sent nothing for ${timeoutMs / 1000} s`)));
    req.on('error', (e) => reject(e.message.startsWith(shown(url)) ? e : new Error(`${shown(url)}: ${e.message}`)));
  });
}

/** The digest of the object behind `url` (read once, kept nowhere). */
const digestOf = (url, timeoutMs = 60000) => fetchInto(url, null, timeoutMs);

/** Fetch `url` to `dst` (via dst.part), refusing bytes whose digest is not `want`'s. */
async function fetchVerified(url, dst, want, what, timeoutMs = 120000) {
  const got = await fetchInto(url, `${dst}.part`, timeoutMs);
  if (got.sha256 !== want.sha256 || got.bytes !== want.bytes) {
    fs.rmSync(`${dst}.part`, { force: true });
    throw new Error(`${what} from ${shown(url)} is ${got.bytes} bytes with sha256 ${got.sha256}, but was imported as ${want.bytes} bytes with sha256 ${want.sha256}: the object changed after the import`);
  }
  fs.renameSync(`${dst}.part`, dst);
}

module.exports = { isHttpUrl, shown, digestOf, fetchVerified };
