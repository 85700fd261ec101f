import type * as TS from 'typescript';
import type { Located } from './diagnostics';
import { ts } from './typescript';

/**
 * A policy is one script: import/export are allowed only when they vanish
 * (type-only), and there is nothing for `import()` or `import.meta` to reach.
 */
export function checkScriptRules(sf: TS.SourceFile, out: Located[]): void {
  const text = sf.text;
  if (text.includes('await')) checkTopLevelAwait(sf, out);
  if (!text.includes('import') && !text.includes('export')) return;

  const reject = (node: TS.Node, message: string): void => {
    const lc = sf.getLineAndCharacterOfPosition(node.getStart(sf));
    out.push({ line: lc.line + 1, column: lc.character + 1, message, code: 'SLUICE_POLICY_MODULE' });
  };

  for (const s of sf.statements) {
    if (ts.isImportDeclaration(s)) {
      const clause = s.importClause;
      if (!clause) reject(s, 'a policy is one file: side-effect imports are not available');
      else if (!isTypeOnlyImport(clause)) {
        reject(s, 'a policy is one file: only type-only imports are allowed (`import type { … } from "…"`)');
      }
    } else if (ts.isImportEqualsDeclaration(s)) {
      // `import x = require("m")` loads a module; `import x = N.y` is a local alias.
      if (ts.isExternalModuleReference(s.moduleReference) && !s.isTypeOnly) {
        reject(s, 'a policy is one file: `import … = require(…)` is not available');
      }
    } else if (ts.isExportDeclaration(s)) {
      const empty = !s.moduleSpecifier && s.exportClause !== undefined && ts.isNamedExports(s.exportClause) && s.exportClause.elements.length === 0;
      const typeOnly = s.isTypeOnly || (s.exportClause !== undefined && ts.isNamedExports(s.exportClause) && s.exportClause.elements.length > 0 && s.exportClause.elements.every((e) => e.isTypeOnly));
      if (!empty && !typeOnly) reject(s, 'a policy is one script: it cannot export values');
    } else if (ts.isExportAssignment(s)) {
      reject(s, 'a policy is one script: it cannot export values');
    } else if (hasExportModifier(s) && !isTypeOnlyDeclaration(s)) {
      reject(s, 'a policy is one script: it cannot export values (remove `export`)');
    }
  }

  const visit = (node: TS.Node): void => {
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      reject(node, 'a policy is one file: dynamic `import()` is not available');
    } else if (ts.isMetaProperty(node) && node.keywordToken === ts.SyntaxKind.ImportKeyword) {
      reject(node, 'a policy is a script: `import.meta` is not available');
    }
    ts.forEachChild(node, visit);
  };
  if (text.includes('import')) visit(sf);
}

/**
 * `await` outside any function. V8 refuses it too, but with messages such as
 * "Unexpected identifier" (in a script `await` is an identifier); say what is
 * wrong, at the `await`.
 */
function checkTopLevelAwait(sf: TS.SourceFile, out: Located[]): void {
  const report = (node: TS.Node): void => {
    const lc = sf.getLineAndCharacterOfPosition(node.getStart(sf));
    out.push({
      line: lc.line + 1,
      column: lc.character + 1,
      message: 'a policy is a script: `await` is only available inside a function (await in the handler, not at the top level)',
      code: 'SLUICE_POLICY_TOP_LEVEL_AWAIT',
    });
  };
  const visit = (node: TS.Node): void => {
    // Function bodies (and class members) may await or not on their own terms.
    if (ts.isFunctionLike(node) || ts.isClassStaticBlockDeclaration(node)) return;
    if (ts.isAwaitExpression(node)) report(node);
    else if (ts.isForOfStatement(node) && node.awaitModifier) report(node.awaitModifier);
    else if (ts.isVariableDeclarationList(node) && (node.flags & ts.NodeFlags.AwaitUsing) === ts.NodeFlags.AwaitUsing) report(node);
    ts.forEachChild(node, visit);
  };
  ts.forEachChild(sf, visit);
}

function isTypeOnlyImport(clause: TS.ImportClause): boolean {
  if (clause.isTypeOnly) return true;
  // `import { type A, type B } from "m"`: every binding type-only, no default.
  if (clause.name) return false;
  const bindings = clause.namedBindings;
  return bindings !== undefined && ts.isNamedImports(bindings) && bindings.elements.length > 0 && bindings.elements.every((e) => e.isTypeOnly);
}

function hasExportModifier(s: TS.Statement): boolean {
  return ts.canHaveModifiers(s) && (ts.getModifiers(s) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
}

function isTypeOnlyDeclaration(s: TS.Statement): boolean {
  if (ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s)) return true;
  // `export declare …` emits nothing.
  return ts.canHaveModifiers(s) && (ts.getModifiers(s) ?? []).some((m) => m.kind === ts.SyntaxKind.DeclareKeyword);
}
