import { CreateTableCommand, DynamoDBClient, PutItemCommand, UpdateItemCommand, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import pMap from 'p-map';
import { startDynamoDBLocal, LOCAL_CREDENTIALS, LOCAL_REGION } from './local/dynamodb-local.ts';
const d = await startDynamoDBLocal({});
try {
  const c = new DynamoDBClient({ endpoint: d.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  await c.send(new CreateTableCommand({ TableName: 'tbl', AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'sk', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }], BillingMode: 'PAY_PER_REQUEST', StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' } }));
  await waitUntilTableExists({ client: c, maxWaitTime: 30 }, { TableName: 'tbl' });
  const run = async (name: string, op: (i: number) => Promise<unknown>) => { const t = performance.now(); await pMap(Array.from({ length: 1500 }, (_, i) => i), op, { concurrency: 16 }); console.log(name, (1500 / ((performance.now() - t) / 1000)).toFixed(0)); };
  const put = (p: string) => (i: number) => c.send(new PutItemCommand({ TableName: 'tbl', Item: { pk: { S: 'T#b' }, sk: { S: `${p}${i}` }, title: { S: 'x' }, stock: { N: '5' }, version: { N: '1' } } }));
  const upd = (p: string) => (i: number) => c.send(new UpdateItemCommand({ TableName: 'tbl', Key: { pk: { S: 'T#b' }, sk: { S: `${p}${i}` } }, UpdateExpression: 'SET #v = if_not_exists(#v, :z) + :o, #c = if_not_exists(#c, :n), #u = :n, #t = :t, #s = :s', ExpressionAttributeNames: { '#v': 'version', '#c': 'createdAt', '#u': 'updatedAt', '#t': 'title', '#s': 'stock' }, ExpressionAttributeValues: { ':z': { N: '0' }, ':o': { N: '1' }, ':n': { S: 'now' }, ':t': { S: 'x' }, ':s': { N: '5' } }, ReturnValues: 'ALL_NEW' }));
  await run('warm put', put('w'));
  await run('put', put('a')); await run('update', upd('b')); await run('put', put('c')); await run('update', upd('d'));
  await run('put again (existing)', put('a')); await run('update again (existing)', upd('b'));
  c.destroy();
} finally { await d.stop(); }
