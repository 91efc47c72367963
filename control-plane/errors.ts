/** A refusal or failure of a control-plane operation, worded for the operator; the CLI prints the message as is. */
export class ControlPlaneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A refusal because what was named does not exist: a cell, a move, a map version, a bucket, a tenant. */
export class NotFoundError extends ControlPlaneError {}

/** A refusal of input that is malformed whatever the state: a tenant id against the id rule, a bucket range backwards. */
export class InvalidInputError extends ControlPlaneError {}

/** A refusal the operator can act on; the CLI prints its message as is. */
export class OperationError extends ControlPlaneError {}
