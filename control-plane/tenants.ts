import {
  CreateUserPoolClientCommand,
  DeleteUserPoolClientCommand,
  ResourceNotFoundException,
  type CognitoIdentityProviderClient,
} from '@aws-sdk/client-cognito-identity-provider';
import { SCOPES, type Scope } from '../layers/shared/src/contracts/scopes.ts';
import { ID_RULE, isValidId } from '../layers/shared/src/ids.ts';
import { ControlPlaneError } from './errors.ts';
import type { ClientBinding } from '../routing/records.ts';
import type { ControlPlaneStore } from './store.ts';

/** The app clients of the identity provider: Cognito on AWS, a fake in tests. */
export interface ClientDirectory {
  /** Creates a client-credentials client with a secret and these scopes. */
  create(request: { name: string; scopes: readonly Scope[]; accessTokenMinutes: number }): Promise<{ clientId: string; secret: string }>;
  /** Deletes the client; false when it did not exist. */
  delete(clientId: string): Promise<boolean>;
}

/** The user pool's app clients through the Cognito API. */
export class CognitoClientDirectory implements ClientDirectory {
  constructor(
    private readonly cognito: CognitoIdentityProviderClient,
    private readonly userPoolId: string,
    private readonly resourceServer: string,
  ) {}

  async create(request: { name: string; scopes: readonly Scope[]; accessTokenMinutes: number }) {
    const { UserPoolClient } = await this.cognito.send(
      new CreateUserPoolClientCommand({
        UserPoolId: this.userPoolId,
        ClientName: request.name,
        GenerateSecret: true,
        AllowedOAuthFlowsUserPoolClient: true,
        AllowedOAuthFlows: ['client_credentials'],
        AllowedOAuthScopes: request.scopes.map((scope) => `${this.resourceServer}/${scope}`),
        AccessTokenValidity: request.accessTokenMinutes,
        TokenValidityUnits: { AccessToken: 'minutes' },
        EnableTokenRevocation: true,
      }),
    );
    if (!UserPoolClient?.ClientId || !UserPoolClient.ClientSecret) throw new ControlPlaneError('Cognito created a client without an id or secret');
    return { clientId: UserPoolClient.ClientId, secret: UserPoolClient.ClientSecret };
  }

  async delete(clientId: string): Promise<boolean> {
    try {
      await this.cognito.send(new DeleteUserPoolClientCommand({ UserPoolId: this.userPoolId, ClientId: clientId }));
      return true;
    } catch (error) {
      if (error instanceof ResourceNotFoundException) return false;
      throw error;
    }
  }
}

export interface CreatedClient extends ClientBinding {
  /** Shown once: Cognito keeps it, this service never stores it. */
  readonly secret: string;
}

/**
 * A tenant's machine clients: each is a Cognito app client (client
 * credentials, a secret, the scopes asked for) and a binding in the
 * control-plane table that the token-claims trigger turns into the token's
 * tenant claim. Creating one leaves both or neither.
 */
export class TenantClients {
  constructor(
    private readonly deps: {
      store: ControlPlaneStore;
      directory: ClientDirectory;
      accessTokenMinutes: number;
      /** Who is acting, recorded with the binding. */
      by: string;
      now?: () => Date;
    },
  ) {}

  async create(tenantId: string, scopes: readonly string[] = SCOPES): Promise<CreatedClient> {
    if (!isValidId(tenantId)) throw new ControlPlaneError(`invalid tenant id "${tenantId}": ${ID_RULE}`);
    const unknown = scopes.filter((scope) => !(SCOPES as readonly string[]).includes(scope));
    if (unknown.length > 0) throw new ControlPlaneError(`unknown scope ${unknown.join(', ')}: the scopes are ${SCOPES.join(', ')}`);
    if (scopes.length === 0) throw new ControlPlaneError('a client needs at least one scope');
    const granted = [...new Set(scopes)] as Scope[];

    const { clientId, secret } = await this.deps.directory.create({
      name: tenantId,
      scopes: granted,
      accessTokenMinutes: this.deps.accessTokenMinutes,
    });
    const binding: ClientBinding = {
      clientId,
      tenantId,
      scopes: granted,
      createdAt: (this.deps.now?.() ?? new Date()).toISOString(),
      by: this.deps.by,
    };
    try {
      await this.deps.store.bindClient(binding);
    } catch (error) {
      // A client without a binding could never get a token: remove it rather than leave it behind.
      await this.deps.directory.delete(clientId);
      throw error;
    }
    return { ...binding, secret };
  }

  list(tenantId?: string): Promise<ClientBinding[]> {
    return this.deps.store.listClients(tenantId);
  }

  /** Stops the client getting new tokens at once; tokens it holds live out their lifetime. */
  async revoke(clientId: string): Promise<ClientBinding> {
    const binding = await this.deps.store.clientBinding(clientId);
    if (!binding) throw new ControlPlaneError(`no client "${clientId}" is bound to a tenant`);
    await this.deps.directory.delete(clientId);
    await this.deps.store.unbindClient(clientId);
    return binding;
  }
}
