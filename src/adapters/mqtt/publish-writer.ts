/**
 * Encodes a QoS 0 PUBLISH packet (MQTT 3.1.1) as one buffer, for the hub to write to the socket
 * itself. MQTT.js writes a publish as five pieces (header, length, topic length, topic, payload),
 * each through the socket's Writable bookkeeping and out in one `writev`; a rule's command is most
 * of what a report costs the hub to send, and one buffer is one write. Only QoS 0 goes this way:
 * it needs no packet id, no store and no acknowledgement, which stay MQTT.js's.
 */

/** The largest remaining length MQTT can express (four bytes of seven bits). */
const MAX_REMAINING = 268_435_455;

export function encodePublish(topic: string, payload: string | Buffer, retain: boolean): Buffer {
  const topicBytes = Buffer.byteLength(topic);
  if (topicBytes === 0) throw new Error('an MQTT topic cannot be empty');
  if (topicBytes > 0xffff) throw new Error(`an MQTT topic is at most 65,535 bytes; this one is ${topicBytes}`);
  const payloadBytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const remaining = 2 + topicBytes + payloadBytes;
  if (remaining > MAX_REMAINING) throw new Error(`an MQTT message is at most 256 MiB; this one is ${remaining} bytes`);
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  const packet = Buffer.allocUnsafe(1 + lengthBytes + remaining);
  packet[0] = retain ? 0x31 : 0x30;
  let at = 1;
  let rest = remaining;
  do {
    const digit = rest % 128;
    rest = Math.floor(rest / 128);
    packet[at++] = rest > 0 ? digit | 0x80 : digit;
  } while (rest > 0);
  packet.writeUInt16BE(topicBytes, at);
  at += 2;
  at += packet.write(topic, at, 'utf8');
  if (typeof payload === 'string') packet.write(payload, at, 'utf8');
  else payload.copy(packet, at);
  return packet;
}
