import { type Apply, type DiscoveryEntry, type Payload, SimDevice } from './device.ts';

/** A door lock: Zigbee2MQTT's `lock`, commanded with `{"state":"LOCK"}` or `{"state":"UNLOCK"}`. */
export class SimLock extends SimDevice {
  readonly kind = 'lock';
  private locked = true;

  protected snapshot(): Payload {
    return { state: this.locked ? 'LOCK' : 'UNLOCK', lock_state: this.locked ? 'locked' : 'unlocked', linkquality: 88 };
  }

  protected entities(): DiscoveryEntry[] {
    return [
      {
        component: 'lock',
        object: 'lock',
        config: {
          name: null,
          state_topic: this.baseTopic,
          command_topic: `${this.baseTopic}/set`,
          command_template: '{"state": "{{ value }}"}',
          value_template: '{{ value_json.state }}',
          payload_lock: 'LOCK',
          payload_unlock: 'UNLOCK',
          state_locked: 'LOCK',
          state_unlocked: 'UNLOCK',
        },
      },
    ];
  }

  protected parseCommand(command: Payload): Apply | null {
    const word = typeof command.state === 'string' ? command.state.toUpperCase() : null;
    if (word !== 'LOCK' && word !== 'UNLOCK') return null;
    return () => {
      this.locked = word === 'LOCK';
    };
  }
}
