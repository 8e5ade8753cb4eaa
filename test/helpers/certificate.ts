import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { tempDir } from './hub-process.ts';

/**
 * A self-signed certificate for 127.0.0.1 and localhost, valid for a day, made by the machine's
 * openssl in a fresh folder: for tests that serve or connect over TLS.
 */
export async function selfSignedCertificate(): Promise<{ certFile: string; keyFile: string }> {
  const dir = await tempDir();
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return { certFile, keyFile };
}
