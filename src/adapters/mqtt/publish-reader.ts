/**
 * Reads the hub's incoming MQTT byte stream ahead of MQTT.js and takes the QoS 0 PUBLISH packets
 * out of it; every other packet (CONNACK, SUBACK, PINGRESP, a QoS 1 or 2 PUBLISH…) goes on to
 * MQTT.js byte for byte, in order, so it keeps the session, the acknowledgements and the pings.
 *
 * Why: the hub subscribes at QoS 0, so nearly every packet it receives is a QoS 0 PUBLISH, and
 * MQTT.js hands each one through a Writable stream, a BufferList, a packet object, a nextTick and
 * two events before the hub sees it. In a profile of the hub taking a flood of reports, that was a
 * quarter to a third of its main thread. A QoS 0 PUBLISH needs none of it: the broker expects no
 * answer, so reading its topic and payload is all there is to do.
 *
 * MQTT 3.1.1 (the protocol level the hub connects with) only: an MQTT 5 PUBLISH carries properties
 * before its payload, so a reader for a level-5 connection is not built (see `MqttConnection.readPublishes`).
 */

export type PublishListener = (topic: string, payload: Buffer, retain: boolean) => void;

/** Longest remaining-length field in MQTT: four bytes of seven bits each. */
const MAX_LENGTH_BYTES = 4;

export class PublishReader {
  /** Chunks holding the start of a packet the last chunk ended inside, waiting for the rest. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** Bytes that packet needs in all, once its header has been read (0 until then). */
  private needed = 0;
  /**
   * Set when the stream is not valid MQTT (a remaining length longer than four bytes): from then
   * on everything goes to MQTT.js, whose parser reports the error and drops the connection.
   */
  private passThrough = false;

  constructor(
    private readonly onPublish: PublishListener,
    private readonly forward: (bytes: Buffer) => void,
  ) {}

  /** Takes the next chunk read from the socket. */
  feed(chunk: Buffer): void {
    if (this.passThrough) {
      this.forward(chunk);
      return;
    }
    let bytes = chunk;
    if (this.partialBytes > 0) {
      this.partial.push(chunk);
      this.partialBytes += chunk.length;
      // A large packet arrives in many chunks: they are joined once, when it is whole.
      if (this.partialBytes < this.needed) return;
      bytes = Buffer.concat(this.partial, this.partialBytes);
      this.partial = [];
      this.partialBytes = 0;
      this.needed = 0;
    }
    const end = bytes.length;
    let at = 0;
    /** Start of the run of packets for MQTT.js not yet forwarded, or -1. */
    let runStart = -1;
    while (at < end) {
      // Fixed header: one byte of type and flags, then the remaining length.
      let length = 0;
      let multiplier = 1;
      let cursor = at + 1;
      let complete = false;
      while (cursor < end && cursor - at <= MAX_LENGTH_BYTES) {
        const byte = bytes[cursor++];
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if (byte < 0x80) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (cursor - at > MAX_LENGTH_BYTES) {
          // Not MQTT: hand over everything from here and let MQTT.js fail the connection.
          this.passThrough = true;
          this.forward(bytes.subarray(runStart >= 0 ? runStart : at));
          return;
        }
        break; // the header itself continues in the next chunk
      }
      const packetEnd = cursor + length;
      if (packetEnd > end) {
        this.needed = packetEnd - at; // the packet continues in the next chunks
        break;
      }
      // 0x30: PUBLISH; the mask keeps the type and the QoS bits, not DUP (0x08) or RETAIN (0x01).
      const topicEnd = cursor + 2 + (length >= 2 ? bytes.readUInt16BE(cursor) : 0);
      if ((bytes[at] & 0xf6) === 0x30 && length >= 2 && topicEnd <= packetEnd) {
        if (runStart >= 0) {
          this.forward(bytes.subarray(runStart, at));
          runStart = -1;
        }
        // A view, as MQTT.js's parser gave: the payload shares the socket's chunk.
        this.onPublish(
          bytes.toString('utf8', cursor + 2, topicEnd),
          bytes.subarray(topicEnd, packetEnd),
          (bytes[at] & 0x01) === 1,
        );
      } else if (runStart < 0) runStart = at; // MQTT.js's (a malformed PUBLISH too: it reports it)
      at = packetEnd;
    }
    if (runStart >= 0) this.forward(bytes.subarray(runStart, at));
    if (at < end) {
      // A copy, so an unfinished packet of a few bytes does not hold the whole chunk.
      const rest = Buffer.from(bytes.subarray(at));
      this.partial = [rest];
      this.partialBytes = rest.length;
    }
  }
}
