// SPDX-License-Identifier: Apache-2.0
/** Worker module for tests of WorkerCryptoPool: serves crypto ranges. */
import { runCryptoWorker } from "../../src/crypto_workers.ts";

runCryptoWorker();
