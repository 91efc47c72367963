/** A refusal or failure of a control-plane operation, worded for the operator; the CLI prints the message as is. */
export class ControlPlaneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
