import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { runReplayCommand } from '../automation/index.ts';
import { HubError } from '../core/errors.ts';
import type { Hub } from '../core/hub.ts';
import { ISO_TIME_EXAMPLE } from '../core/iso-time.ts';
import { VERSION } from '../core/version.ts';
import { runCarSimulatorCommand } from '../sim/car/cli.ts';
import { createTriad } from '../triad.ts';
import { resolveOptions, type StartFlags } from './config.ts';
import { explainStartFailure } from './failures.ts';
import { ConfigError, flagValue, isoTime, listenHost, oneOf, portNumber, positiveNumber, shown } from './settings.ts';

/** The `triad` command. Each subcommand is small: it builds options and hands them to the hub. */
export function buildProgram(): Command {
  const program = new Command('triad')
    .description("A self-hosted hub where a household's people, cars and home are one system")
    .version(VERSION)
    // A flag commander refuses (unknown, missing its value) ends the way every other refusal does:
    // one line from main, exit 2. Subcommands inherit both settings.
    .exitOverride()
    .configureOutput({ outputError: () => {} })
    .showSuggestionAfterError();

  program
    .command('start')
    .description('Start the hub')
    .option('--config <file>', 'YAML or JSON config file')
    .option('--data <dir>', 'data folder (default ./triad-data)')
    .option('--http-port <n>', 'HTTP port (default 8780)')
    .option('--http-host <host>', 'HTTP address to listen on (default 0.0.0.0)')
    .option('--mqtt-port <n>', 'embedded MQTT broker port (default 1883)')
    .option('--mqtt-url <url>', 'use an external MQTT broker instead of the embedded one')
    .option(
      '--mqtt-host <host>',
      'address the embedded MQTT broker listens on (default 0.0.0.0, whatever --http-host is)',
    )
    .option('--pg-url <url>', 'keep data in PostgreSQL instead of SQLite')
    .option('--demo', 'also start the simulated household')
    .option('--log-level <level>', 'debug, info, warn, error or silent')
    .option('--mqtt-allow-anonymous', 'let MQTT clients without credentials use the embedded broker (off by default)')
    .option('--tls-cert <file>', 'PEM certificate: serve HTTPS/WSS (and mqtts with --mqtts-port)')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--mqtts-port <n>', 'also serve MQTT over TLS on this port (needs --tls-cert and --tls-key)')
    .option(
      '--trust-proxy <addresses>',
      'reverse proxies whose X-Forwarded-* headers to believe: IP addresses, CIDR ranges, loopback, linklocal or uniquelocal, comma-separated',
    )
    .action(async (flags: StartFlags) => {
      await start(flags);
    });
  const sim = program.command('sim').description('run part of the simulated household on its own');
  sim
    .command('car')
    .description('the simulated car alone, as a VISS server (no hub)')
    .requiredOption('--viss-port <n>', 'port of its VISS WebSocket server')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--speedup <x>', 'simulated seconds per real second (default 1)')
    .option('--start <iso>', 'simulated time to start at (default now)')
    .option(
      '--state <file>',
      'where the car is kept between runs (default ./triad-data/sim-car-<port>.json; with --viss-port 0, not kept)',
    )
    .option(
      '--at <place>',
      'start parked at home (cable in) or work, and stay there (default: where the commute puts it now, commuting)',
    )
    .action(async (f: CarSimulatorFlags) => {
      await runCarSimulatorCommand(carSimulatorOptions(f));
    });

  program
    .command('replay <rule>')
    .description('Run a rule file against recorded history, sending nothing')
    // Checked by the replay itself (one line, exit 2): as required options, a misspelled one
    // (`--form`) was reported as the right one missing.
    .option('--from <iso>', 'start of the range (ISO 8601)')
    .option('--to <iso>', 'end of the range (ISO 8601)')
    .option('--data <dir>', 'data folder (default ./triad-data)')
    .option('--pg-url <url>', 'read history from PostgreSQL instead')
    .option('--household <id>', 'household (default home)')
    .action(
      async (
        file: string,
        flags: { from?: string; to?: string; data?: string; pgUrl?: string; household?: string },
      ) => {
        // Judged here as every other time is (strictly: see parseIsoTime); the replay itself
        // takes whatever Date.parse makes of them, 31 February and a zone-less time included.
        for (const [flag, value] of [['--from', flags.from] as const, ['--to', flags.to] as const]) {
          if (value !== undefined && isoTime.read(value) === undefined)
            throw new ConfigError(
              `--from and --to must be ISO 8601 times (each a date and time with its zone, such as ${ISO_TIME_EXAMPLE}); ${flag} is ${shown(value)}`,
            );
        }
        process.exitCode = await runReplayCommand({ file, ...flags });
      },
    );
  return program;
}

type CarSimulatorFlags = {
  vissPort: string;
  host?: string;
  speedup?: string;
  start?: string;
  state?: string;
  at?: string;
};

/** `triad sim car`'s flags, each checked: a wrong one is refused before anything listens. */
function carSimulatorOptions(f: CarSimulatorFlags) {
  const start = flagValue(isoTime, '--start', f.start);
  return {
    vissPort: flagValue(portNumber, '--viss-port', f.vissPort) as number,
    host: flagValue(listenHost, '--host', f.host),
    // Up to a simulated day per second: faster, the one-second physics steps pile up.
    speedup: flagValue(positiveNumber(86_400, 'a number above 0, at most 86,400'), '--speedup', f.speedup),
    start: start === undefined ? undefined : new Date(start).toISOString(),
    stateFile: f.state,
    parkedAt: flagValue(oneOf(['home', 'work'] as const), '--at', f.at),
  };
}

async function start(flags: StartFlags): Promise<void> {
  const options = await resolveOptions(flags);
  const tokenBefore = await readFile(join(options.dataDir, 'owner.token'), 'utf8').then(
    (text) => text.trim(),
    () => null,
  );
  const hub = createTriad(options);
  // A signal during start-up waits for the start to end, then stops the hub whole. Stopping it
  // halfway pulled the MQTT connection and the store from under the subsystems still starting
  // ("could not start: MQTT connection is not open", exit 1), which then logged "ready" after
  // "stopping". A start that hangs (a broker that never answers) is ended by a second signal.
  let starting = true;
  let signalled: string | null = null;
  const stop = (signal: string) => {
    hub.log.info(`${signal} received; stopping`);
    hub.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  const shutdown = (signal: string) => {
    if (signalled === null) {
      signalled = signal;
      if (starting)
        hub.log.info(`${signal} received while starting; the hub stops once started (${signal} again ends it now)`);
      else stop(signal);
    } else if (starting) {
      hub.log.warn(`${signal} received again while starting; exiting without stopping`);
      process.exit(1);
    }
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  try {
    await hub.start();
  } catch (error) {
    const storeOpened = hub.store !== undefined;
    await hub.stop();
    await hub.removeUnusedDataFolder();
    throw explainStartFailure(error, { options, storeOpened });
  } finally {
    starting = false;
  }
  if (signalled !== null) {
    stop(signalled);
    return;
  }
  const lines = [
    `Triad ${VERSION} is running.`,
    `  API:        ${hub.httpUrl}/api  (health: ${hub.httpUrl}/api/health)`,
    `  Dashboard:  ${hub.httpUrl}/`,
    `  MQTT:       ${hub.mqttUrl}`,
    `  Owner token: ${hub.ownerTokenPath}`,
    ...(await ownerSignIn(hub, tokenBefore)),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/**
 * The banner's sign-in line, true to whose token owner.token holds: the first owner, `owner`, with
 * the password in owner.password, unless a hub from before owners were kept removed them. A token
 * the hub had to make again (the old one revoked, or its user removed) is said, not left silent:
 * scripts and the demo's wallbox that used the old one stop working.
 */
async function ownerSignIn(hub: Hub, tokenBefore: string | null): Promise<string[]> {
  const principal = await hub.tokens.verify(hub.ownerToken).catch(() => null);
  const user = principal?.userId ? hub.security.accounts.user(principal.householdId, principal.userId) : undefined;
  const passwordPath = join(dirname(hub.ownerTokenPath), 'owner.password');
  const lines =
    user === undefined || user.name === 'owner'
      ? [`  Owner sign-in: name "owner", password in ${passwordPath}`]
      : [
          `  Owner sign-in: name ${JSON.stringify(user.name)}, with their own password (${passwordPath} was for "owner", who was removed)`,
        ];
  if (tokenBefore !== null && tokenBefore !== hub.ownerToken) {
    const whose = user ? `user ${JSON.stringify(user.name)}` : 'the first owner';
    lines.push(
      `  Note: the token owner.token held no longer worked (revoked, or its user removed); it now holds a new one, for ${whose}`,
    );
  }
  return lines;
}

/**
 * Runs the command line. Whatever stops a command is one line on stderr and a non-zero exit: 2
 * for a value the user gave (a flag, a config key) or a clear failure (a port in use), 1 for
 * anything else. TRIAD_DEBUG=1 adds the stack, for a report of a bug.
 */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help (asked for, or shown for a missing command) and --version end here too, having
      // printed what they print, with commander's exit code.
      if (error.exitCode === 0 || error.code === 'commander.help') process.exit(error.exitCode);
      process.stderr.write(
        `triad: ${error.message
          .replace(/^error: /, '')
          .trim()
          .replace(/\s*\n\s*/g, ' ')}\n`,
      );
      process.exit(2);
    }
    const known = error instanceof ConfigError || error instanceof HubError;
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`triad: ${message.split('\n')[0]}\n`);
    if (process.env.TRIAD_DEBUG && process.env.TRIAD_DEBUG !== '0' && error instanceof Error)
      process.stderr.write(`${error.stack}\n`);
    process.exit(known ? 2 : 1);
  }
}
