import { FerryError } from '../../errors.js';

/** Where an S3 store keeps its files: a bucket, a key prefix in it, and how to reach it. */
export interface S3Location {
  bucket: string;
  /** '' or ending in '/': every key of the store starts with it. */
  prefix: string;
  /** A custom endpoint (Ceph RGW, Garage, SeaweedFS, MinIO); path-style addressing is used there. */
  endpoint?: string;
  /** Default: AWS_REGION / the AWS config files, or us-east-1 with a custom endpoint. */
  region?: string;
}

/** Parses `s3://BUCKET/PREFIX` (the `--store` value); `flag` names the option in errors. */
export function parseS3Url(url: string, flag = '--store'): Pick<S3Location, 'bucket' | 'prefix'> {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!match) throw new FerryError('BAD_NAME', `${flag} ${url}: expected s3://BUCKET or s3://BUCKET/PREFIX`);
  const bucket = match[1]!;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new FerryError('BAD_NAME', `${flag} ${url}: "${bucket}" is not a valid bucket name`);
  const parts = (match[2] ?? '').split('/').filter((part) => part !== '');
  if (parts.some((part) => part === '.' || part === '..')) throw new FerryError('BAD_NAME', `${flag} ${url}: the prefix may not contain . or ..`);
  return { bucket, prefix: parts.length === 0 ? '' : `${parts.join('/')}/` };
}

export function formatS3Location(location: S3Location): string {
  return `s3://${location.bucket}/${location.prefix}`;
}
