import { randomUUID } from 'node:crypto';
import {
  CognitoIdentityProviderClient,
  CreateUserPoolClientCommand,
  type DeleteUserPoolClientCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-cognito-identity-provider';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { ControlPlaneError } from '../../control-plane/errors.ts';
import { ControlPlaneStore } from '../../control-plane/store.ts';
import { CognitoClientDirectory, TenantClients, type ClientDirectory } from '../../control-plane/tenants.ts';
import { addTenantClaim, UnboundClientError } from '../../functions/tenant-claims/claims.ts';
import { clientCredentialsEvent } from '../support/cognito.ts';
import { createCellTable } from '../support/tables.ts';

let control: Awaited<ReturnType<typeof createCellTable>>;
let store: ControlPlaneStore;
beforeAll(async () => {
  control = await createCellTable(inject('dynamoEndpoint'), 'control');
  store = new ControlPlaneStore(control.client, control.tableName);
});
afterAll(() => control?.drop());

/** Cognito's app clients, in memory. */
function fakeDirectory() {
  const clients = new Map<string, { name: string; scopes: readonly string[]; accessTokenMinutes: number }>();
  const directory: ClientDirectory = {
    async create(request) {
      const clientId = randomUUID().replaceAll('-', '');
      clients.set(clientId, request);
      return { clientId, secret: `secret-${randomUUID()}` };
    },
    async delete(clientId) {
      return clients.delete(clientId);
    },
  };
  return { directory, clients };
}

const tenantClients = (directory: ClientDirectory) =>
  new TenantClients({ store, directory, accessTokenMinutes: 30, by: 'ops@test', now: () => new Date('2026-11-24T10:00:00Z') });

describe('TenantClients', () => {
  it('creates a client with the scopes asked for and binds it to its tenant; the trigger then claims that tenant', async () => {
    const { directory, clients } = fakeDirectory();
    const created = await tenantClients(directory).create('acme', ['items.read']);
    expect(created).toEqual({
      clientId: expect.any(String),
      secret: expect.stringMatching(/^secret-/),
      tenantId: 'acme',
      scopes: ['items.read'],
      createdAt: '2026-11-24T10:00:00.000Z',
      by: 'ops@test',
    });
    expect(clients.get(created.clientId)).toEqual({ name: 'acme', scopes: ['items.read'], accessTokenMinutes: 30 });
    const { secret: _secret, ...binding } = created;
    expect(await store.clientBinding(created.clientId)).toEqual(binding);
    expect(JSON.stringify(await store.listClients())).not.toContain(created.secret);
    // A client id binds once: rebinding it to another tenant is refused.
    await expect(store.bindClient({ ...binding, tenantId: 'globex' })).rejects.toThrow(/conditional/i);

    const tenantOf = async (clientId: string) => (await store.clientBinding(clientId))?.tenantId;
    const event = await addTenantClaim(clientCredentialsEvent(created.clientId), tenantOf);
    expect(event.response.claimsAndScopeOverrideDetails.accessTokenGeneration?.claimsToAddOrOverride).toEqual({ tenant_id: 'acme' });
    await expect(addTenantClaim(clientCredentialsEvent('stranger'), tenantOf)).rejects.toBeInstanceOf(UnboundClientError);
  });

  it('grants every scope unless told otherwise, and lists clients by tenant', async () => {
    const { directory } = fakeDirectory();
    const clients = tenantClients(directory);
    const all = await clients.create('globex');
    expect(all.scopes).toEqual(['items.read', 'items.write', 'orders.write']);
    await clients.create('initech', ['orders.write', 'orders.write']);
    expect((await clients.list('initech')).map((c) => c.scopes)).toEqual([['orders.write']]);
    expect((await clients.list('globex')).map((c) => c.clientId)).toEqual([all.clientId]);
  });

  it('refuses a bad tenant id, an unknown scope or no scope, creating nothing', async () => {
    const { directory, clients } = fakeDirectory();
    await expect(tenantClients(directory).create('bad id')).rejects.toThrow(/invalid tenant id/);
    await expect(tenantClients(directory).create('acme', ['items.delete'])).rejects.toThrow(/unknown scope items.delete/);
    await expect(tenantClients(directory).create('acme', [])).rejects.toThrow(/at least one scope/);
    expect(clients.size).toBe(0);
  });

  it('deletes the new client again when its binding cannot be written', async () => {
    const { directory, clients } = fakeDirectory();
    const broken = new ControlPlaneStore(control.client, 'no-such-table');
    const failing = new TenantClients({ store: broken, directory, accessTokenMinutes: 30, by: 'ops@test' });
    await expect(failing.create('acme')).rejects.toThrow();
    expect(clients.size).toBe(0);
  });

  it('revokes a client: deleted from the directory and unbound; an unknown one is an error', async () => {
    const { directory, clients } = fakeDirectory();
    const created = await tenantClients(directory).create('umbrella');
    const revoked = await tenantClients(directory).revoke(created.clientId);
    expect(revoked.tenantId).toBe('umbrella');
    expect(clients.has(created.clientId)).toBe(false);
    expect(await store.clientBinding(created.clientId)).toBeUndefined();
    await expect(tenantClients(directory).revoke(created.clientId)).rejects.toBeInstanceOf(ControlPlaneError);
  });
});

describe('CognitoClientDirectory', () => {
  it('creates a client-credentials app client with a secret, the prefixed scopes and the token lifetime', async () => {
    const cognito = new CognitoIdentityProviderClient({ region: 'us-east-1' });
    const send = vi.spyOn(cognito, 'send').mockImplementation(async () => ({ UserPoolClient: { ClientId: 'abc123', ClientSecret: 's3cret' } }));
    const directory = new CognitoClientDirectory(cognito, 'us-east-1_Pool', 'item-master');
    expect(await directory.create({ name: 'acme', scopes: ['items.read', 'orders.write'], accessTokenMinutes: 15 })).toEqual({
      clientId: 'abc123',
      secret: 's3cret',
    });
    const command = send.mock.calls[0]![0] as CreateUserPoolClientCommand;
    expect(command).toBeInstanceOf(CreateUserPoolClientCommand);
    expect(command.input).toMatchObject({
      UserPoolId: 'us-east-1_Pool',
      ClientName: 'acme',
      GenerateSecret: true,
      AllowedOAuthFlowsUserPoolClient: true,
      AllowedOAuthFlows: ['client_credentials'],
      AllowedOAuthScopes: ['item-master/items.read', 'item-master/orders.write'],
      AccessTokenValidity: 15,
      TokenValidityUnits: { AccessToken: 'minutes' },
    });
  });

  it('deletes a client, and reports one already gone', async () => {
    const cognito = new CognitoIdentityProviderClient({ region: 'us-east-1' });
    const send = vi.spyOn(cognito, 'send').mockImplementationOnce(async () => ({}));
    const directory = new CognitoClientDirectory(cognito, 'us-east-1_Pool', 'item-master');
    expect(await directory.delete('abc123')).toBe(true);
    expect((send.mock.calls[0]![0] as DeleteUserPoolClientCommand).input).toEqual({ UserPoolId: 'us-east-1_Pool', ClientId: 'abc123' });
    send.mockImplementationOnce(async () => {
      throw new ResourceNotFoundException({ message: 'gone', $metadata: {} });
    });
    expect(await directory.delete('abc123')).toBe(false);
  });
});
