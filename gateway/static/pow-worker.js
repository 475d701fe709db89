// The waiting room's proof of work, off the page's thread: a nonce such that
// SHA-256("<challenge>:<nonce>") starts with `bits` zero bits (waiting_room/pow.py checks it).
function leadingZeroBits(bytes) {
  let bits = 0;
  for (const byte of bytes) {
    if (byte !== 0) return bits + Math.clz32(byte) - 24;
    bits += 8;
  }
  return bits;
}

self.onmessage = async ({ data: { challenge, bits } }) => {
  const encoder = new TextEncoder();
  for (let nonce = 0; ; nonce += 1) {
    const digest = await crypto.subtle.digest("SHA-256", encoder.encode(`${challenge}:${nonce}`));
    if (leadingZeroBits(new Uint8Array(digest)) >= bits) {
      self.postMessage({ nonce: String(nonce) });
      return;
    }
  }
};
