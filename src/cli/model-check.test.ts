import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeModelApi, startFakeModelApi } from '../../test/fake-model-api.js';
import { checkModelEndpoint } from './model-check.js';

const KEY = 'sk-ant-the-right-key';
let fake: FakeModelApi;
beforeEach(async () => {
  fake = await startFakeModelApi({ expectedApiKey: KEY });
});
afterEach(async () => {
  await fake.close();
});

describe('the model endpoint check of doctor and status', () => {
  it('goes through the credential proxy with the credential to the configured upstream, and calls it good', async () => {
    const check = await checkModelEndpoint({ modelBaseUrl: fake.url }, { kind: 'api-key', apiKey: KEY });
    expect(check).toMatchObject({
      isOk: true,
      detail: expect.stringMatching(/answers and takes the credential/),
    });
    expect(fake.requests.map((request) => [request.path, request.headers['x-api-key']])).toEqual([
      ['/v1/messages/count_tokens', KEY],
    ]);
  });

  it('says when the credential is refused, and how to fix it', async () => {
    const check = await checkModelEndpoint(
      { modelBaseUrl: fake.url },
      { kind: 'api-key', apiKey: 'sk-ant-wrong' },
    );
    expect(check).toMatchObject({
      isOk: false,
      detail: expect.stringMatching(/refused the credential \(HTTP 401/),
    });
    expect(check.fix).toMatch(/ANTHROPIC_API_KEY/);
  });

  it('says when the endpoint cannot be reached or does not answer in time', async () => {
    const silent = http.createServer(() => {}); // takes the request, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const slow = await checkModelEndpoint(
        { modelBaseUrl: `http://127.0.0.1:${port}` },
        { kind: 'api-key', apiKey: KEY },
        300,
      );
      expect(slow).toMatchObject({ isOk: false, detail: expect.stringMatching(/no answer within 0\.3 s/) });
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
    const down = await checkModelEndpoint(
      { modelBaseUrl: `http://127.0.0.1:${port}` },
      { kind: 'api-key', apiKey: KEY },
    );
    expect(down).toMatchObject({
      isOk: false,
      detail: expect.stringMatching(/HTTP 502: .*could not be reached/),
    });
    expect(down.fix).toMatch(/ANTHROPIC_BASE_URL/);
  });

  it('without a credential it says so, without a request', async () => {
    expect(await checkModelEndpoint({ modelBaseUrl: fake.url }, null)).toMatchObject({ isOk: false });
    expect(fake.requests).toEqual([]);
  });
});
