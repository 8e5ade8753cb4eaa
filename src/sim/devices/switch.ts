import { type Apply, type DiscoveryEntry, onOff, type Payload, SimDevice } from './device.ts';

/** A smart plug: Zigbee2MQTT's `switch`, taking `{"state":"ON"}` or a bare `ON` on its set topic. */
export class SimSwitch extends SimDevice {
  readonly kind = 'switch';
  private on = false;

  protected snapshot(): Payload {
    return { state: this.on ? 'ON' : 'OFF', linkquality: 96 };
  }

  protected entities(): DiscoveryEntry[] {
    return [
      {
        component: 'switch',
        object: 'switch',
        config: {
          name: null,
          state_topic: this.baseTopic,
          command_topic: `${this.baseTopic}/set`,
          value_template: '{{ value_json.state }}',
          payload_on: 'ON',
          payload_off: 'OFF',
        },
      },
    ];
  }

  protected parseCommand(command: Payload): Apply | null {
    if (onOff(command.state, this.on) === null) return null;
    // Resolved at apply time so TOGGLE acts on the state the plug has by then.
    return () => {
      this.on = onOff(command.state, this.on) ?? this.on;
    };
  }
}
