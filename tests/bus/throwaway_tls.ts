/**
 * A throwaway CA and a certificate for 127.0.0.1 it signed, made with openssl in a temp dir,
 * for the bus's TLS tests (i10-c; the lead may fold it into `tests/fixtures/tls_certs.ts`).
 *
 * @module
 */

/** PEM texts: the CA's certificate, the server's certificate and key. */
export interface ThrowawayTls {
  ca: string;
  cert: string;
  key: string;
  /** Paths of the same files, for CLIs. */
  paths: { ca: string; cert: string; key: string };
  /** Removes the temp dir. */
  remove(): Promise<void>;
}

/**
 * Makes the CA and the certificate, or says why it cannot (no openssl).
 *
 * @returns The PEMs, or a reason to skip the test.
 */
export async function throwawayTls(): Promise<ThrowawayTls | string> {
  const dir = await Deno.makeTempDir({ prefix: "bus-tls-" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const ext = `${dir}/ext.cnf`;
  await Deno.writeTextFile(
    ext,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n" +
      "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  const steps = [
    ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=t"],
    ["req", ...ec, "-keyout", "key.pem", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"],
    ["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"]
      .concat(["-out", "cert.pem", "-days", "1", "-extfile", ext]),
  ];
  try {
    for (const args of steps) {
      const out = await new Deno.Command("openssl", {
        args,
        cwd: dir,
        stdout: "null",
        stderr: "piped",
      })
        .output();
      if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    }
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    return error instanceof Deno.errors.NotFound
      ? "openssl is not installed"
      : `openssl failed: ${(error as Error).message}`;
  }
  const paths = { ca: `${dir}/ca.pem`, cert: `${dir}/cert.pem`, key: `${dir}/key.pem` };
  return {
    ca: await Deno.readTextFile(paths.ca),
    cert: await Deno.readTextFile(paths.cert),
    key: await Deno.readTextFile(paths.key),
    paths,
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
