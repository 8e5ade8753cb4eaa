/** A minimal structured logger; the hub prints one line a message, tests can capture or silence it. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(scope: string): Logger;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface LogLine {
  level: Exclude<LogLevel, 'silent'>;
  scope: string;
  message: string;
  fields?: Record<string, unknown>;
}

export function createLogger(options: { level?: LogLevel; scope?: string; sink?: (line: LogLine) => void }): Logger {
  const threshold = ORDER[options.level ?? 'info'];
  const sink =
    options.sink ??
    ((line: LogLine) => {
      const extra = line.fields && Object.keys(line.fields).length ? ` ${safeJson(line.fields)}` : '';
      const text = `${new Date().toISOString()} ${line.level.padEnd(5)} [${line.scope}] ${line.message}${extra}\n`;
      (line.level === 'error' || line.level === 'warn' ? process.stderr : process.stdout).write(text);
    });
  const make = (scope: string): Logger => {
    const emit = (level: LogLine['level']) => (message: string, fields?: Record<string, unknown>) => {
      if (ORDER[level] >= threshold) sink({ level, scope, message, fields });
    };
    return {
      debug: emit('debug'),
      info: emit('info'),
      warn: emit('warn'),
      error: emit('error'),
      child: (sub) => make(scope ? `${scope}.${sub}` : sub),
    };
  };
  return make(options.scope ?? 'triad');
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => (v instanceof Error ? v.message : v));
  } catch {
    return '[unserialisable]';
  }
}
